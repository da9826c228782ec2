//! Glob matching for `guards.resource_pattern`.

/// Whole-string glob match: `*` matches any run of characters (including none and `/`), `?`
/// exactly one character, and everything else itself. There is no escape syntax.
///
/// Linear time whatever the pattern, so hostile patterns like `*a*a*a*a*b` cannot blow up:
/// greedy matching settles ordinary patterns in one pass without allocating, and once it has
/// spent a linear budget on backtracking, a bit-parallel automaton that reads the text exactly
/// once decides instead.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let budget = 4 * (pattern.len() + text.len()) + 64;
    match greedy_match(pattern, text, budget) {
        Some(matched) => matched,
        None => Glob::compile(pattern).matches(text),
    }
}

/// Greedy matching that only ever backtracks to the most recent `*`, which is exact for this
/// syntax (an earlier `*` never needs to give characters back) but O(pattern × text) at worst:
/// `None` once it has taken `budget` steps.
fn greedy_match(pattern: &str, text: &str, mut budget: usize) -> Option<bool> {
    // Byte offsets into pattern and text, always on char boundaries.
    let (mut p, mut t) = (0, 0);
    // After the last `*` seen: where the rest of the pattern starts, and where in the text the
    // next attempt starts (the `*` having absorbed everything before it).
    let mut resume: Option<(usize, usize)> = None;
    while let Some(tc) = next_char(text, t) {
        budget = budget.checked_sub(1)?;
        match next_char(pattern, p) {
            Some('*') => {
                p += 1;
                resume = Some((p, t));
                continue;
            }
            Some(pc) if pc == '?' || pc == tc => {
                p += pc.len_utf8();
                t += tc.len_utf8();
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` absorb one more character and retry, or fail.
        let Some((star_p, star_t)) = resume else {
            return Some(false);
        };
        let next = star_t + next_char(text, star_t).map_or(1, char::len_utf8);
        resume = Some((star_p, next));
        (p, t) = (star_p, next);
    }
    Some(pattern.get(p..).is_some_and(|rest| rest.bytes().all(|b| b == b'*')))
}

fn next_char(s: &str, at: usize) -> Option<char> {
    s.get(at..).and_then(|rest| rest.chars().next())
}

/// The automaton of a pattern. State `i` means "the first `i` pattern characters have matched";
/// bit `i` of each mask describes pattern character `i`.
struct Glob {
    /// Pattern length in characters, each run of `*` collapsed into one (they mean the same).
    len: usize,
    /// Words per bit set: states run from 0 to `len` inclusive.
    words: usize,
    star: Vec<u64>,
    any: Vec<u64>,
    /// Distinct literal characters, sorted, and their masks (`words` words each, in order).
    literals: Vec<char>,
    literal_masks: Vec<u64>,
}

impl Glob {
    fn compile(pattern: &str) -> Glob {
        let mut tokens: Vec<char> = Vec::with_capacity(pattern.len());
        for c in pattern.chars() {
            if !(c == '*' && tokens.last() == Some(&'*')) {
                tokens.push(c);
            }
        }
        let words = (tokens.len() + 1).div_ceil(64);
        let mut literals: Vec<char> = tokens.iter().copied().filter(|&c| c != '*' && c != '?').collect();
        literals.sort_unstable();
        literals.dedup();
        let mut glob = Glob {
            len: tokens.len(),
            words,
            star: vec![0; words],
            any: vec![0; words],
            literal_masks: vec![0; literals.len() * words],
            literals,
        };
        for (i, &c) in tokens.iter().enumerate() {
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            match c {
                '*' => glob.star[word] |= bit,
                '?' => glob.any[word] |= bit,
                c => {
                    if let Ok(k) = glob.literals.binary_search(&c) {
                        glob.literal_masks[k * words + word] |= bit;
                    }
                }
            }
        }
        glob
    }

    fn matches(&self, text: &str) -> bool {
        let mut state = vec![0u64; self.words];
        state[0] = 1;
        self.skip_stars(&mut state);
        for c in text.chars() {
            let literal =
                self.literals.binary_search(&c).ok().map(|k| &self.literal_masks[k * self.words..][..self.words]);
            // Positions whose character accepts `c` advance by one; stars absorb `c` and stay.
            let mut carry = 0;
            for w in 0..self.words {
                let accepts = self.any[w] | literal.map_or(0, |masks| masks[w]);
                let advancing = state[w] & accepts;
                state[w] = (advancing << 1) | carry | (state[w] & self.star[w]);
                carry = advancing >> 63;
            }
            self.skip_stars(&mut state);
            if state.iter().all(|&w| w == 0) {
                return false;
            }
        }
        state[self.len / 64] & (1 << (self.len % 64)) != 0
    }

    /// A star may also match nothing: from a star's position, the next one is reachable for free.
    /// One pass suffices because stars never follow stars after compilation.
    fn skip_stars(&self, state: &mut [u64]) {
        let mut carry = 0;
        for (word, star) in state.iter_mut().zip(&self.star) {
            let at_star = *word & star;
            *word |= (at_star << 1) | carry;
            carry = at_star >> 63;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{glob_match, greedy_match, Glob};

    /// The textbook recursive definition: exponential, but obviously right on short inputs.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|skip| reference(rest, &text[skip..])),
            Some((&p, rest)) => {
                text.split_first().is_some_and(|(&c, tail)| (p == '?' || p == c) && reference(rest, tail))
            }
        }
    }

    #[test]
    fn agrees_with_the_recursive_definition() {
        // Deterministic xorshift: every pattern and text over a small alphabet, randomly.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let pattern_chars = ['a', 'b', 'é', '*', '?'];
        let text_chars = ['a', 'b', 'é'];
        for _ in 0..20_000 {
            let pattern: Vec<char> = (0..next(9)).map(|_| pattern_chars[next(5) as usize]).collect();
            let text: Vec<char> = (0..next(10)).map(|_| text_chars[next(3) as usize]).collect();
            let (p, t): (String, String) = (pattern.iter().collect(), text.iter().collect());
            let expected = reference(&pattern, &text);
            assert_eq!(glob_match(&p, &t), expected, "{p:?} on {t:?}");
            assert_eq!(greedy_match(&p, &t, usize::MAX), Some(expected), "greedy: {p:?} on {t:?}");
            assert_eq!(Glob::compile(&p).matches(&t), expected, "automaton: {p:?} on {t:?}");
        }
    }

    #[test]
    fn hostile_patterns_fall_back_to_the_automaton() {
        let text = "a".repeat(10_000);
        let pattern = format!("*{}b", "a".repeat(200));
        assert_eq!(greedy_match(&pattern, &text, 4 * (pattern.len() + text.len()) + 64), None);
        assert!(!glob_match(&pattern, &text));
        assert!(glob_match(&pattern, &format!("{text}b")));
        // Ordinary patterns stay on the greedy path.
        assert_eq!(greedy_match("docs/*.md", "docs/a.b/c.md", 4 * 22 + 64), Some(true));
    }

    #[test]
    fn patterns_longer_than_a_word() {
        let long: String = "ab?".repeat(50);
        let text: String = "abc".repeat(50);
        assert!(glob_match(&format!("*{long}*"), &format!("xx{text}yy")));
        assert!(!glob_match(&format!("*{long}*"), &format!("xx{}yy", &text[1..])));
        assert!(glob_match(
            &format!("{}*{}", "a".repeat(70), "b".repeat(70)),
            &format!("{}x{}", "a".repeat(70), "b".repeat(70))
        ));
        assert!(glob_match(&"*?".repeat(100), &"z".repeat(100)));
        assert!(!glob_match(&"*?".repeat(100), &"z".repeat(99)));
    }
}
