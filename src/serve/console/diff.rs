//! Two texts side by side, line by line: the lines both hold in order (a longest common
//! subsequence) face each other; what lies between two such lines is paired up row by row and
//! marked as changed. Enough for two pretty-printed JSON documents.

/// One row of a side-by-side comparison: the left and right line (`None`: nothing on that side).
#[derive(Debug, PartialEq, Eq)]
pub struct Row<'a> {
    pub left: Option<(usize, &'a str)>,
    pub right: Option<(usize, &'a str)>,
}

impl Row<'_> {
    /// Whether the two sides differ.
    pub fn changed(&self) -> bool {
        self.left.map(|l| l.1) != self.right.map(|r| r.1)
    }
}

/// Above this many line pairs, lines are compared by position only (the table of a longest
/// common subsequence would take too long and too much memory).
const MAX_CELLS: usize = 4_000_000;

/// The rows of `a` beside `b`; the numbers are 1-based line numbers.
pub fn side_by_side<'a>(a: &'a str, b: &'a str) -> Vec<Row<'a>> {
    let left: Vec<&str> = a.lines().collect();
    let right: Vec<&str> = b.lines().collect();
    // Equal lines at both ends need no table.
    let head = left.iter().zip(&right).take_while(|(l, r)| l == r).count();
    let tail = left[head..]
        .iter()
        .rev()
        .zip(right[head..].iter().rev())
        .take_while(|(l, r)| l == r)
        .count();
    let (l, r) = (
        &left[head..left.len() - tail],
        &right[head..right.len() - tail],
    );
    let mut rows = Vec::with_capacity(left.len().max(right.len()));
    let same = |i: usize, j: usize| Row {
        left: Some((i + 1, left[i])),
        right: Some((j + 1, right[j])),
    };
    for i in 0..head {
        rows.push(same(i, i));
    }
    // Pairs of (left, right) indexes (into `l`, `r`) that match, in order.
    let matches = if l.len().saturating_mul(r.len()) <= MAX_CELLS {
        common(l, r)
    } else {
        Vec::new()
    };
    let (mut i, mut j) = (0, 0);
    for (mi, mj) in matches
        .into_iter()
        .chain(std::iter::once((l.len(), r.len())))
    {
        // The lines between two matches, paired up.
        let n = (mi - i).max(mj - j);
        for k in 0..n {
            rows.push(Row {
                left: (i + k < mi).then(|| (head + i + k + 1, l[i + k])),
                right: (j + k < mj).then(|| (head + j + k + 1, r[j + k])),
            });
        }
        if mi < l.len() {
            rows.push(same(head + mi, head + mj));
        }
        (i, j) = (mi + 1, mj + 1);
    }
    for k in 0..tail {
        rows.push(same(left.len() - tail + k, right.len() - tail + k));
    }
    rows
}

/// A longest common subsequence of `a` and `b`, as pairs of indexes.
fn common(a: &[&str], b: &[&str]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    // len[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut len = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[at(i, j)] = if a[i] == b[j] {
                len[at(i + 1, j + 1)] + 1
            } else {
                len[at(i + 1, j)].max(len[at(i, j + 1)])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if len[at(i + 1, j)] >= len[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                format!(
                    "{}{}|{}",
                    if r.changed() { "*" } else { " " },
                    r.left.map_or("", |l| l.1),
                    r.right.map_or("", |r| r.1)
                )
            })
            .collect()
    }

    #[test]
    fn equal_lines_face_each_other_and_the_rest_is_marked() {
        let a = "{\n  \"id\": \"1\",\n  \"name\": \"old\",\n  \"status\": \"A\"\n}";
        let b =
            "{\n  \"id\": \"1\",\n  \"name\": \"new\",\n  \"extra\": 1,\n  \"status\": \"A\"\n}";
        let rows = side_by_side(a, b);
        assert_eq!(
            show(&rows),
            [
                " {|{",
                "   \"id\": \"1\",|  \"id\": \"1\",",
                "*  \"name\": \"old\",|  \"name\": \"new\",",
                "*|  \"extra\": 1,",
                "   \"status\": \"A\"|  \"status\": \"A\"",
                " }|}",
            ]
        );
        // Line numbers are each side's own.
        assert_eq!(rows[4].left, Some((4, "  \"status\": \"A\"")));
        assert_eq!(rows[4].right, Some((5, "  \"status\": \"A\"")));
        assert!(side_by_side(a, a).iter().all(|r| !r.changed()));
        let removed = side_by_side("x\ny\nz", "x\nz");
        assert_eq!(show(&removed), [" x|x", "*y|", " z|z"]);
        assert_eq!(show(&side_by_side("", "a")), ["*|a"]);
        assert_eq!(show(&side_by_side("a\nb", "c\nd")), ["*a|c", "*b|d"]);
    }
}
