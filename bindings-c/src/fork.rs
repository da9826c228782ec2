//! A C program that forks after opening an embedded engine needs to do nothing: the first embedded
//! open registers the engine's fork hooks (`allowly_core::store::before_fork` and the two
//! `after_fork_*`) with `pthread_atfork`, so no child inherits the write-ahead-log checkpointer's
//! lock held mid-call. The child opens its own engine; other threads must not be inside a call at
//! the fork (SQLite's rule).

#[cfg(unix)]
pub(crate) fn register_hooks_once() {
    use std::ffi::c_int;
    use std::sync::Once;

    type Hook = Option<unsafe extern "C" fn()>;
    extern "C" {
        fn pthread_atfork(prepare: Hook, parent: Hook, child: Hook) -> c_int;
    }
    // The core hooks do not panic (and a panic here would abort, never unwind into C).
    unsafe extern "C" fn before() {
        allowly_core::store::before_fork();
    }
    unsafe extern "C" fn in_parent() {
        allowly_core::store::after_fork_in_parent();
    }
    unsafe extern "C" fn in_child() {
        allowly_core::store::after_fork_in_child();
    }

    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: the three hooks are functions of this library that take no arguments; glibc
        // unregisters them if the library is unloaded. Registration can fail only for want of
        // memory, and then the engine still works (a fork mid-checkpoint could hang the child).
        let _ = unsafe { pthread_atfork(Some(before), Some(in_parent), Some(in_child)) };
    });
}

#[cfg(not(unix))]
pub(crate) fn register_hooks_once() {}
