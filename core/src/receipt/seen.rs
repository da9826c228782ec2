//! What an export's verification remembers of the receipts that verified so far: a digest of each
//! receipt id, with a fixed-size value (the member data checkpoint evidence needs, or nothing).
//!
//! Memory stays bounded whatever the export's size. The newest ids live in a hash table; when it
//! holds [`SeenSet::DEFAULT_TABLE_BYTES`], it is written to an unnamed temporary file as a sorted
//! run. Of a run, only a Bloom filter (10 bits an id) and the first digest of each 4 KiB page
//! stay in memory, so a lookup that the filter turns away (all but about 1% of new ids) costs no
//! I/O, and one it lets through reads one page. Runs of equal size are merged, so a lookup consults at
//! most log₂ of the number of spills. Answers are exact: the filter only decides whether to read.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Write};

/// A receipt id as the duplicate rule remembers it: the first 16 bytes of its SHA-256 (a million
/// ids in 16 MB instead of 100; two ids share one with odds of about 2⁻⁸⁸ for a billion lines).
pub(super) type IdDigest = [u8; 16];

const PAGE_BYTES: usize = 4096;

/// A set of id digests, each with `N` bytes of value, that spills to disk.
pub(super) struct SeenSet<const N: usize> {
    newest: HashMap<IdDigest, [u8; N], BuildHasherDefault<DigestHasher>>,
    /// How many entries `newest` takes before it is written out as a run.
    spill_at: usize,
    runs: Vec<Run>,
}

impl<const N: usize> SeenSet<N> {
    /// The hash table's share of memory before it spills (the runs add ~1.3 bytes an id).
    pub const DEFAULT_TABLE_BYTES: usize = 18 << 20;
    const RECORD_BYTES: usize = 16 + N;

    /// A set whose table spills at about `bytes` (tests use a few hundred to spill often).
    pub fn with_table_bytes(bytes: usize) -> Self {
        // The table's buckets double at 7/8 full and cost a control byte each: spilling just
        // before the table would grow past `bytes` keeps it at one power-of-two size.
        let bucket_bytes = Self::RECORD_BYTES + 1;
        let buckets = (bytes / bucket_bytes).max(8);
        let buckets = if buckets.is_power_of_two() { buckets } else { buckets.next_power_of_two() / 2 };
        SeenSet { newest: HashMap::default(), spill_at: buckets / 8 * 7, runs: Vec::new() }
    }

    pub fn contains(&self, id: &IdDigest) -> io::Result<bool> {
        Ok(self.get(id)?.is_some())
    }

    pub fn get(&self, id: &IdDigest) -> io::Result<Option<[u8; N]>> {
        if let Some(value) = self.newest.get(id) {
            return Ok(Some(*value));
        }
        let mut value = [0u8; N];
        for run in self.runs.iter().rev() {
            if run.find(id, Self::RECORD_BYTES, &mut value)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// Adds `id`, which the caller has found absent.
    pub fn insert(&mut self, id: IdDigest, value: [u8; N]) -> io::Result<()> {
        self.newest.insert(id, value);
        if self.newest.len() >= self.spill_at {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes the table out as a sorted run, then merges runs of equal level (a binary counter:
    /// every id is rewritten about log₂(spills) times in all).
    fn spill(&mut self) -> io::Result<()> {
        let mut entries: Vec<(IdDigest, [u8; N])> = self.newest.drain().collect();
        entries.sort_unstable_by_key(|entry| entry.0);
        let mut writer = RunWriter::new(entries.len() as u64, Self::RECORD_BYTES)?;
        for (id, value) in &entries {
            writer.push(id, value)?;
        }
        drop(entries);
        self.runs.push(writer.finish(0)?);
        while let [.., older, newer] = self.runs.as_slice() {
            if older.level != newer.level {
                break;
            }
            let merged = merge(older, newer, Self::RECORD_BYTES)?;
            self.runs.truncate(self.runs.len() - 2);
            self.runs.push(merged);
        }
        Ok(())
    }
}

/// One sorted run of records (digest, value) in an unnamed temporary file.
struct Run {
    file: File,
    records: u64,
    /// Spills merged into it, as a power of two.
    level: u32,
    bloom: Bloom,
    /// The first digest of each page of records.
    page_firsts: Vec<IdDigest>,
}

fn records_per_page(record_bytes: usize) -> usize {
    (PAGE_BYTES / record_bytes).max(1)
}

impl Run {
    /// Whether the run holds `id`; if so, its value is copied into `value`.
    fn find(&self, id: &IdDigest, record_bytes: usize, value: &mut [u8]) -> io::Result<bool> {
        if !self.bloom.may_contain(id) {
            return Ok(false);
        }
        let Some(page_index) = self.page_firsts.partition_point(|first| first <= id).checked_sub(1) else {
            return Ok(false);
        };
        let per_page = records_per_page(record_bytes) as u64;
        let first = page_index as u64 * per_page;
        let count = per_page.min(self.records - first) as usize;
        let mut page = [0u8; PAGE_BYTES];
        let records = &mut page[..count * record_bytes];
        read_exact_at(&self.file, records, first * record_bytes as u64)?;
        let (mut low, mut high) = (0, count);
        while low < high {
            let middle = (low + high) / 2;
            let record = &records[middle * record_bytes..(middle + 1) * record_bytes];
            match record[..16].cmp(id.as_slice()) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => {
                    value.copy_from_slice(&record[16..]);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// Builds a run from records given in digest order.
struct RunWriter {
    out: BufWriter<File>,
    record_bytes: usize,
    written: u64,
    bloom: Bloom,
    page_firsts: Vec<IdDigest>,
}

impl RunWriter {
    fn new(records: u64, record_bytes: usize) -> io::Result<RunWriter> {
        Ok(RunWriter {
            out: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            record_bytes,
            written: 0,
            bloom: Bloom::for_ids(records),
            page_firsts: Vec::with_capacity(records.div_ceil(records_per_page(record_bytes) as u64) as usize),
        })
    }

    fn push(&mut self, id: &IdDigest, value: &[u8]) -> io::Result<()> {
        if self.written % records_per_page(self.record_bytes) as u64 == 0 {
            self.page_firsts.push(*id);
        }
        self.bloom.insert(id);
        self.out.write_all(id)?;
        self.out.write_all(value)?;
        self.written += 1;
        Ok(())
    }

    fn finish(self, level: u32) -> io::Result<Run> {
        let file = self.out.into_inner().map_err(io::IntoInnerError::into_error)?;
        Ok(Run { file, records: self.written, level, bloom: self.bloom, page_firsts: self.page_firsts })
    }
}

/// Two runs as one, read and written sequentially.
fn merge(older: &Run, newer: &Run, record_bytes: usize) -> io::Result<Run> {
    let mut writer = RunWriter::new(older.records + newer.records, record_bytes)?;
    let mut left = RunReader::new(older, record_bytes);
    let mut right = RunReader::new(newer, record_bytes);
    loop {
        let take_left = match (left.peek()?, right.peek()?) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a[..16] <= b[..16],
        };
        let side = if take_left { &mut left } else { &mut right };
        let record = side.peek()?.unwrap_or_default();
        let (id, value) = record.split_at(16);
        let id: IdDigest = id.try_into().unwrap_or_default();
        writer.push(&id, value)?;
        side.advance();
    }
    writer.finish(older.level + 1)
}

/// Reads a run's records in order, 64 KiB at a time.
struct RunReader<'a> {
    run: &'a Run,
    record_bytes: usize,
    buffer: Vec<u8>,
    /// Offset in `buffer` of the current record.
    at: usize,
    /// Index of the record after those in `buffer`.
    next_record: u64,
}

impl<'a> RunReader<'a> {
    const RECORDS_PER_READ: usize = 64 * 1024 / 16;

    fn new(run: &'a Run, record_bytes: usize) -> RunReader<'a> {
        RunReader { run, record_bytes, buffer: Vec::new(), at: 0, next_record: 0 }
    }

    fn peek(&mut self) -> io::Result<Option<&[u8]>> {
        if self.at == self.buffer.len() {
            let count = (Self::RECORDS_PER_READ as u64).min(self.run.records - self.next_record) as usize;
            if count == 0 {
                return Ok(None);
            }
            self.buffer.resize(count * self.record_bytes, 0);
            read_exact_at(&self.run.file, &mut self.buffer, self.next_record * self.record_bytes as u64)?;
            self.next_record += count as u64;
            self.at = 0;
        }
        Ok(Some(&self.buffer[self.at..self.at + self.record_bytes]))
    }

    fn advance(&mut self) {
        self.at += self.record_bytes;
    }
}

/// A blocked Bloom filter: an id sets 6 bits in one 512-bit block (one cache line), chosen by the
/// digest's own bits, which SHA-256 makes uniform. 10 bits an id: about 1% false positives, each
/// costing one page read from a file the page cache mostly holds.
struct Bloom {
    blocks: Vec<[u64; 8]>,
}

impl Bloom {
    const BITS_PER_ID: u64 = 10;
    const BITS_SET: usize = 6;

    fn for_ids(ids: u64) -> Bloom {
        let blocks = (ids * Self::BITS_PER_ID).div_ceil(512).max(1);
        Bloom { blocks: vec![[0; 8]; blocks as usize] }
    }

    /// The block of `id` and the bits it sets there (9 bits of the digest each), as (word, mask).
    fn probe(&self, id: &IdDigest) -> (usize, [(usize, u64); Self::BITS_SET]) {
        let [a, b, c, d, e, f, g, h, rest @ ..] = *id;
        let high = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        let block = ((u128::from(high) * self.blocks.len() as u128) >> 64) as usize;
        let bits = u64::from_le_bytes(rest);
        let positions = std::array::from_fn(|i| {
            let bit = (bits >> (i * 9)) & 511;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        });
        (block, positions)
    }

    fn insert(&mut self, id: &IdDigest) {
        let (block, positions) = self.probe(id);
        for (word, mask) in positions {
            self.blocks[block][word] |= mask;
        }
    }

    fn may_contain(&self, id: &IdDigest) -> bool {
        let (block, positions) = self.probe(id);
        positions.iter().all(|&(word, mask)| self.blocks[block][word] & mask != 0)
    }
}

/// Hashes a digest by its first 8 bytes: they are already uniform, so no further mixing is needed.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A `[u8; 16]` hashes as its length (through `write_usize`), then its bytes here.
        for (i, byte) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*byte) << (i * 8);
        }
    }

    fn write_usize(&mut self, _length: usize) {}
}

/// `pread`: reads at `offset` without moving a cursor, so lookups can run on several threads.
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buffer.len() {
            match std::os::windows::fs::FileExt::seek_read(file, &mut buffer[done..], offset + done as u64)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                read => done += read,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn digest(n: u64) -> IdDigest {
        Sha256::digest(n.to_le_bytes())[..16].try_into().unwrap()
    }

    #[test]
    fn answers_stay_exact_across_spills_and_merges() {
        // A table of about 100 entries: 5,000 ids make 50-odd spills and every level of merge.
        let mut set = SeenSet::<8>::with_table_bytes(3000);
        for n in 0..5000u64 {
            assert!(!set.contains(&digest(n)).unwrap(), "{n} before insertion");
            set.insert(digest(n), n.to_le_bytes()).unwrap();
        }
        assert!(set.runs.len() > 1 && set.runs.len() <= 7, "{} runs", set.runs.len());
        assert!(set.runs.iter().any(|run| run.level >= 4));
        for n in 0..5000u64 {
            assert_eq!(set.get(&digest(n)).unwrap(), Some(n.to_le_bytes()), "{n}");
        }
        for n in 5000..25_000u64 {
            assert_eq!(set.get(&digest(n)).unwrap(), None, "{n} was never inserted");
        }
    }

    #[test]
    fn ids_sharing_a_page_boundary_or_a_prefix_are_told_apart() {
        let mut set = SeenSet::<0>::with_table_bytes(200);
        let mut ids: Vec<IdDigest> = (0..2000u16)
            .map(|n| {
                let mut id = [7u8; 16];
                id[14..].copy_from_slice(&n.to_be_bytes());
                id
            })
            .collect();
        ids.retain(|id| id[15] % 2 == 0);
        for id in &ids {
            set.insert(*id, []).unwrap();
        }
        for n in 0..2000u16 {
            let mut id = [7u8; 16];
            id[14..].copy_from_slice(&n.to_be_bytes());
            assert_eq!(set.contains(&id).unwrap(), id[15] % 2 == 0, "{n}");
        }
        assert!(!set.contains(&[0; 16]).unwrap() && !set.contains(&[255; 16]).unwrap());
    }

    #[test]
    fn the_table_spills_before_it_outgrows_its_share() {
        let set = SeenSet::<0>::with_table_bytes(SeenSet::<0>::DEFAULT_TABLE_BYTES);
        assert_eq!(set.spill_at, (1 << 20) / 8 * 7);
        let members = SeenSet::<41>::with_table_bytes(SeenSet::<41>::DEFAULT_TABLE_BYTES);
        assert_eq!(members.spill_at, (1 << 18) / 8 * 7);
    }

    #[test]
    fn the_bloom_filter_turns_away_almost_every_absent_id() {
        let mut bloom = Bloom::for_ids(100_000);
        (0..100_000).for_each(|n| bloom.insert(&digest(n)));
        assert!((0..100_000).all(|n| bloom.may_contain(&digest(n))));
        let false_positives = (100_000..1_100_000).filter(|&n| bloom.may_contain(&digest(n))).count();
        assert!(false_positives < 15_000, "{false_positives} in a million");
    }
}
