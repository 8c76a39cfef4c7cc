//! The positions (in the view's key order) of the items a list query matches: all of them, a
//! sorted list, or a bitset (when dense postings were intersected word by word).

use crate::cache::view::to_bits;
use std::borrow::Cow;

/// The matching positions of a view of `n` items.
pub(super) enum Matches<'v> {
    All(usize),
    List(Cow<'v, [u32]>),
    Bits { words: Vec<u64>, count: usize },
}

impl<'v> Matches<'v> {
    /// The items set in every one of `sets` (bitsets of the same view).
    pub(super) fn and(sets: &[&[u64]]) -> Matches<'v> {
        let len = sets.iter().map(|s| s.len()).min().unwrap_or(0);
        let words: Vec<u64> = (0..len)
            .map(|w| sets.iter().fold(u64::MAX, |acc, set| acc & set[w]))
            .collect();
        let count = words.iter().map(|w| w.count_ones() as usize).sum();
        Matches::Bits { words, count }
    }

    pub(super) fn total(&self) -> usize {
        match self {
            Matches::All(n) => *n,
            Matches::List(list) => list.len(),
            Matches::Bits { count, .. } => *count,
        }
    }

    /// How many matches lie before position `start`.
    pub(super) fn before(&self, start: u32) -> usize {
        match self {
            Matches::All(n) => (start as usize).min(*n),
            Matches::List(list) => list.partition_point(|&at| at < start),
            Matches::Bits { words, .. } => {
                let (full, rest) = ((start / 64) as usize, start % 64);
                let mut count: usize = words[..full.min(words.len())]
                    .iter()
                    .map(|w| w.count_ones() as usize)
                    .sum();
                if rest > 0 && full < words.len() {
                    count += (words[full] & ((1u64 << rest) - 1)).count_ones() as usize;
                }
                count
            }
        }
    }

    /// The `from`-th to the `end`-th match (exclusive), ascending.
    pub(super) fn range(&self, from: usize, end: usize) -> Vec<u32> {
        match self {
            Matches::All(_) => (from as u32..end as u32).collect(),
            Matches::List(list) => list[from..end].to_vec(),
            Matches::Bits { words, .. } => {
                let mut out = Vec::with_capacity(end - from);
                let mut seen = 0;
                for (w, &word) in words.iter().enumerate() {
                    let ones = word.count_ones() as usize;
                    if seen + ones <= from {
                        seen += ones;
                        continue;
                    }
                    let mut bits = word;
                    while bits != 0 && out.len() < end - from {
                        let bit = bits.trailing_zeros();
                        if seen >= from {
                            out.push(w as u32 * 64 + bit);
                        }
                        seen += 1;
                        bits &= bits - 1;
                    }
                    if out.len() == end - from {
                        break;
                    }
                }
                out
            }
        }
    }

    /// The matches as a bitset of `n` positions.
    pub(super) fn bits(&self, n: usize) -> Cow<'_, [u64]> {
        match self {
            Matches::Bits { words, .. } => Cow::Borrowed(words),
            Matches::All(_) => {
                let mut words = vec![u64::MAX; n.div_ceil(64)];
                if n % 64 != 0 {
                    if let Some(last) = words.last_mut() {
                        *last = (1u64 << (n % 64)) - 1;
                    }
                }
                Cow::Owned(words)
            }
            Matches::List(list) => Cow::Owned(to_bits(list, n)),
        }
    }

    /// Every match, ascending.
    pub(super) fn into_list(self) -> Vec<u32> {
        match self {
            Matches::All(n) => (0..n as u32).collect(),
            Matches::List(list) => list.into_owned(),
            Matches::Bits { count, .. } => self.range(0, count),
        }
    }
}

/// Whether position `at` is set in `bits`.
pub(super) fn has(bits: &[u64], at: u32) -> bool {
    bits.get(at as usize / 64)
        .is_some_and(|w| w & (1 << (at % 64)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_agree() {
        let n = 200;
        let list: Vec<u32> = (0..n as u32).filter(|i| i % 3 == 0 || i % 7 == 0).collect();
        let bits = to_bits(&list, n);
        let forms = [
            Matches::List(Cow::Borrowed(&list)),
            Matches::and(&[&bits, &to_bits(&(0..n as u32).collect::<Vec<_>>(), n)]),
        ];
        for m in &forms {
            assert_eq!(m.total(), list.len());
            for start in [0, 1, 63, 64, 65, 150, 199, 250] {
                assert_eq!(m.before(start), list.iter().filter(|&&a| a < start).count());
            }
            for (from, end) in [(0, 5), (10, 40), (60, 86), (85, 86), (0, list.len())] {
                assert_eq!(
                    m.range(from, end),
                    list[from..end].to_vec(),
                    "{from}..{end}"
                );
            }
            assert!(list.iter().all(|&a| has(&m.bits(n), a)));
            assert_eq!(
                m.bits(n).iter().map(|w| w.count_ones()).sum::<u32>() as usize,
                list.len()
            );
        }
        let all = Matches::All(70);
        assert_eq!(all.bits(70).iter().map(|w| w.count_ones()).sum::<u32>(), 70);
        assert_eq!(all.range(64, 70), (64..70).collect::<Vec<u32>>());
        assert_eq!(Matches::and(&[&bits]).into_list(), list);
    }
}
