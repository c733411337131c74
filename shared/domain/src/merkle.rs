//! The audit log's Merkle tree: RFC 6962 (RFC 9162 section 2.1) over the rows in `seq`
//! order, the leaf data of row `seq` being its `hash` as 32 raw bytes.
//!
//! The tree is kept the way Go's `tlog` keeps it: appending leaf `n` completes the
//! perfect subtrees that end at it (one per trailing one bit of `n`), and their hashes
//! are stored with the row, so every aligned subtree's hash is stored exactly once, at
//! its last leaf. The *frontier* (the roots of the perfect subtrees the tree's size
//! decomposes into, largest first) is all an append needs; it rides on the chain head.
//! A proof then needs O(log n) stored hashes, never a walk over the rows.
//!
//! The proofs and their checks are RFC 9162's algorithms (2.1.3 and 2.1.4), written
//! over a source of aligned subtree hashes so the same code serves the live table and
//! an offline folder.

use sha2::{Digest, Sha256};

/// A node's or leaf's hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The leaf hash of a row: SHA-256(0x00 || the row's hash as raw bytes).
pub fn leaf_hash(row_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(row_hash);
    h.finalize().into()
}

/// An inner node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Parses a row's lowercase hex hash.
pub fn parse_hex(text: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Appends a leaf to a tree whose frontier is `frontier` and which holds `size` leaves:
/// updates the frontier and returns the hashes the new leaf completes, level 0 (the
/// leaf hash) first. Those are what the row stores.
pub fn append(frontier: &mut Vec<Hash>, size: u64, leaf: Hash) -> Vec<Hash> {
    let mut completed = vec![leaf];
    let mut cur = leaf;
    let mut n = size;
    while n & 1 == 1 {
        let Some(left) = frontier.pop() else { break };
        cur = node_hash(&left, &cur);
        completed.push(cur);
        n >>= 1;
    }
    frontier.push(cur);
    completed
}

/// The root of a tree from its frontier.
pub fn frontier_root(frontier: &[Hash]) -> Hash {
    let mut peaks = frontier.iter().rev();
    let Some(last) = peaks.next() else { return empty_root() };
    peaks.fold(*last, |acc, left| node_hash(left, &acc))
}

/// The frontier of a tree of `size` leaves, from the aligned subtrees it decomposes
/// into (`node(level, index)`), largest first.
pub fn frontier_nodes(size: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u32).rev() {
        if size & (1u64 << level) != 0 {
            out.push((level, start >> level));
            start += 1u64 << level;
        }
    }
    out
}

/// Where the hash of the aligned subtree `(level, index)` is stored: on the row whose
/// leaf completes it (1-based `seq`), at position `level` of that row's hashes.
pub fn stored_at(level: u32, index: u64) -> u64 {
    (index + 1) << level
}

/// The largest power of two strictly below `n` (`n` > 1).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// A source of aligned subtree hashes: `(level, index)` covers leaves
/// `index * 2^level .. (index + 1) * 2^level`.
pub trait Nodes {
    fn node(&self, level: u32, index: u64) -> Option<Hash>;
}

impl<F: Fn(u32, u64) -> Option<Hash>> Nodes for F {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self(level, index)
    }
}

/// The aligned subtrees whose hashes make up MTH(D[lo..hi]).
fn range_nodes(lo: u64, hi: u64, out: &mut Vec<(u32, u64)>) {
    let n = hi - lo;
    if n == 0 {
        return;
    }
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        out.push((n.trailing_zeros(), lo / n));
        return;
    }
    let k = split(n);
    range_nodes(lo, lo + k, out);
    range_nodes(lo + k, hi, out);
}

/// MTH(D[lo..hi]) from stored aligned subtrees.
pub fn range_hash(nodes: &dyn Nodes, lo: u64, hi: u64) -> Option<Hash> {
    let n = hi - lo;
    if n == 0 {
        return Some(empty_root());
    }
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return nodes.node(n.trailing_zeros(), lo / n);
    }
    let k = split(n);
    Some(node_hash(&range_hash(nodes, lo, lo + k)?, &range_hash(nodes, lo + k, hi)?))
}

/// The ranges, in proof order, whose hashes make up the inclusion proof of leaf `m`
/// in a tree of `n` leaves (RFC 9162 2.1.3.1, PATH).
fn inclusion_ranges(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m - lo < k {
        inclusion_ranges(m, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        inclusion_ranges(m, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// The ranges, in proof order, of the consistency proof from `m` to the tree
/// `lo..hi` (RFC 9162 2.1.4.1, SUBPROOF).
fn consistency_ranges(m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push((lo, hi));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        consistency_ranges(m, lo, lo + k, whole, out);
        out.push((lo + k, hi));
    } else {
        consistency_ranges(m - k, lo + k, hi, false, out);
        out.push((lo, lo + k));
    }
}

/// Why a proof cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {leaf} is not in a tree of {size}")]
    OutOfRange { leaf: u64, size: u64 },
    #[error("a consistency proof needs 0 < from <= to, got {from} and {to}")]
    BadSizes { from: u64, to: u64 },
    #[error("the stored tree lacks the subtree at level {0}, index {1}")]
    Missing(u32, u64),
}

fn hashes_of(nodes: &dyn Nodes, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, ProofError> {
    ranges
        .iter()
        .map(|&(lo, hi)| {
            range_hash(nodes, lo, hi).ok_or_else(|| {
                let mut need = Vec::new();
                range_nodes(lo, hi, &mut need);
                let (l, i) = need.into_iter().find(|&(l, i)| nodes.node(l, i).is_none()).unwrap_or((0, lo));
                ProofError::Missing(l, i)
            })
        })
        .collect()
}

fn nodes_of(ranges: &[(u64, u64)]) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for &(lo, hi) in ranges {
        range_nodes(lo, hi, &mut out);
    }
    out
}

/// The aligned subtrees an inclusion proof of leaf `m` in a tree of `n` reads.
pub fn inclusion_nodes(m: u64, n: u64) -> Vec<(u32, u64)> {
    let mut ranges = Vec::new();
    if m < n {
        inclusion_ranges(m, 0, n, &mut ranges);
    }
    nodes_of(&ranges)
}

/// RFC 9162 inclusion proof of leaf `m` (0-based) in the tree of `n` leaves.
pub fn inclusion_proof(nodes: &dyn Nodes, m: u64, n: u64) -> Result<Vec<Hash>, ProofError> {
    if m >= n {
        return Err(ProofError::OutOfRange { leaf: m, size: n });
    }
    let mut ranges = Vec::new();
    inclusion_ranges(m, 0, n, &mut ranges);
    hashes_of(nodes, &ranges)
}

/// The aligned subtrees a consistency proof from `m` to `n` reads.
pub fn consistency_nodes(m: u64, n: u64) -> Vec<(u32, u64)> {
    let mut ranges = Vec::new();
    if 0 < m && m < n {
        consistency_ranges(m, 0, n, true, &mut ranges);
    }
    nodes_of(&ranges)
}

/// RFC 9162 consistency proof from the tree of `m` leaves to the tree of `n`; empty
/// when `m == n`.
pub fn consistency_proof(nodes: &dyn Nodes, m: u64, n: u64) -> Result<Vec<Hash>, ProofError> {
    if m == 0 || m > n {
        return Err(ProofError::BadSizes { from: m, to: n });
    }
    let mut ranges = Vec::new();
    if m < n {
        consistency_ranges(m, 0, n, true, &mut ranges);
    }
    hashes_of(nodes, &ranges)
}

/// RFC 9162 2.1.3.2: whether `proof` proves leaf `m` (hash `leaf`) in the tree of `n`
/// with `root`.
pub fn verify_inclusion(m: u64, n: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if m >= n {
        return false;
    }
    let (mut f, mut s) = (m, n - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// RFC 9162 2.1.4.2: whether `proof` proves the tree of `m` leaves with `first` a
/// prefix of the tree of `n` with `second`.
pub fn verify_consistency(m: u64, n: u64, first: &Hash, second: &Hash, proof: &[Hash]) -> bool {
    if m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && first == second;
    }
    if m == 0 {
        return proof.is_empty() && *first == empty_root();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*first);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (m - 1, n - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *first && sr == *second
}

/// Appends an aligned subtree of `level` (its hash `hash`) to a tree of `size`
/// leaves whose frontier is `frontier`; `size` must be a multiple of `2^level`.
pub fn append_node(frontier: &mut Vec<Hash>, size: u64, level: u32, hash: Hash) {
    let mut cur = hash;
    let mut n = size >> level;
    while n & 1 == 1 {
        let Some(left) = frontier.pop() else { break };
        cur = node_hash(&left, &cur);
        n >>= 1;
    }
    frontier.push(cur);
}

/// The leaves `begin..end` of a tree as the aligned subtrees they decompose into, left
/// to right: a piece of the tree built apart from what comes before it (a verifier
/// walking a chain in parts folds each part into one), merged later with
/// [`CompactRange::root_after`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactRange {
    begin: u64,
    end: u64,
    /// `(level, hash)` of each subtree, left to right.
    nodes: Vec<(u32, Hash)>,
}

impl CompactRange {
    pub fn new(begin: u64) -> CompactRange {
        CompactRange { begin, end: begin, nodes: Vec::new() }
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends the next leaf (its leaf hash).
    pub fn push(&mut self, leaf: Hash) {
        let (mut level, mut cur, mut start) = (0u32, leaf, self.end);
        while let Some(&(l, left)) = self.nodes.last() {
            let sibling = start - (1u64 << level);
            if l != level || !sibling.is_multiple_of(1u64 << (level + 1)) {
                break;
            }
            self.nodes.pop();
            cur = node_hash(&left, &cur);
            start = sibling;
            level += 1;
        }
        self.nodes.push((level, cur));
        self.end += 1;
    }

    /// The root of the tree `0..end`, given the frontier of the leaves before `begin`.
    pub fn root_after(&self, before: &[Hash]) -> Hash {
        let mut frontier = before.to_vec();
        let mut size = self.begin;
        for &(level, hash) in &self.nodes {
            append_node(&mut frontier, size, level, hash);
            size += 1u64 << level;
        }
        frontier_root(&frontier)
    }

    /// As a frontier, when the range starts at the first leaf.
    pub fn frontier(&self) -> Option<Vec<Hash>> {
        (self.begin == 0).then(|| self.nodes.iter().map(|&(_, h)| h).collect())
    }
}

/// The tree over a whole list of leaf hashes, in memory: for offline checks and tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is the aligned subtree `(l, i)`.
    levels: Vec<Vec<Hash>>,
    frontier: Vec<Hash>,
}

impl MemoryTree {
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a row by its hash.
    pub fn push(&mut self, row_hash: &Hash) {
        let size = self.size();
        let completed = append(&mut self.frontier, size, leaf_hash(row_hash));
        for (level, h) in completed.into_iter().enumerate() {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(h);
        }
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        (size <= self.size()).then(|| range_hash(self, 0, size)).flatten()
    }

    pub fn root(&self) -> Hash {
        frontier_root(&self.frontier)
    }
}

impl Nodes for MemoryTree {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.levels.get(level as usize)?.get(usize::try_from(index).ok()?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u64) -> Hash {
        Sha256::digest(i.to_be_bytes()).into()
    }

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        (0..n).for_each(|i| t.push(&row(i)));
        t
    }

    /// RFC 9162's MTH, straight from its definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_definition_at_every_size() {
        let rows: Vec<Hash> = (0..70).map(row).collect();
        let t = tree(70);
        for n in 0..=70u64 {
            assert_eq!(t.root_at(n), Some(mth(&rows[..n as usize])), "size {n}");
            assert_eq!(frontier_root(&tree(n).frontier), mth(&rows[..n as usize]), "frontier at {n}");
        }
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn stored_hashes_sit_at_the_last_leaf_of_their_subtree() {
        let mut frontier = Vec::new();
        let mut stored: Vec<Vec<Hash>> = Vec::new();
        for i in 0..40u64 {
            stored.push(append(&mut frontier, i, leaf_hash(&row(i))));
            assert_eq!(stored[i as usize].len() as u32, 1 + i.trailing_ones());
        }
        let t = tree(40);
        for (level, index) in [(0, 5), (1, 3), (2, 1), (3, 3), (5, 0)] {
            let seq = stored_at(level, index);
            assert_eq!(Some(stored[seq as usize - 1][level as usize]), t.node(level, index));
        }
        assert_eq!(frontier_nodes(13), vec![(3, 0), (2, 2), (0, 12)]);
    }

    #[test]
    fn inclusion_proofs_verify_and_refuse_every_change() {
        for n in 1..=33u64 {
            let t = tree(n);
            let root = t.root();
            for m in 0..n {
                let proof = inclusion_proof(&t, m, n).unwrap();
                let leaf = leaf_hash(&row(m));
                assert!(verify_inclusion(m, n, &leaf, &proof, &root), "m {m} n {n}");
                assert!(!verify_inclusion(m, n, &leaf_hash(&row(m + 1)), &proof, &root));
                if n > 1 {
                    assert!(!verify_inclusion((m + 1) % n, n, &leaf, &proof, &root) || proof.is_empty());
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(m, n, &leaf, &bad, &root));
                    assert!(!verify_inclusion(m, n, &leaf, &proof[..proof.len() - 1], &root));
                }
                assert!(inclusion_nodes(m, n).iter().all(|&(l, i)| t.node(l, i).is_some()));
            }
        }
        assert_eq!(inclusion_proof(&tree(3), 3, 3), Err(ProofError::OutOfRange { leaf: 3, size: 3 }));
    }

    #[test]
    fn consistency_proofs_verify_and_refuse_every_change() {
        let t = tree(40);
        for n in 1..=40u64 {
            let second = t.root_at(n).unwrap();
            for m in 1..=n {
                let first = t.root_at(m).unwrap();
                let proof = consistency_proof(&t, m, n).unwrap();
                assert!(verify_consistency(m, n, &first, &second, &proof), "m {m} n {n}");
                if m < n {
                    let mut bad = proof.clone();
                    bad[0][31] ^= 1;
                    assert!(!verify_consistency(m, n, &first, &second, &bad));
                    assert!(!verify_consistency(m, n, &second, &first, &proof));
                    // A tree that rewrote leaf 0 is no extension.
                    let mut forked = MemoryTree::new();
                    (0..n).for_each(|i| forked.push(&row(if i == 0 { 999 } else { i })));
                    assert!(!verify_consistency(m, n, &first, &forked.root(), &proof));
                }
            }
        }
        assert!(consistency_proof(&t, 0, 3).is_err());
        assert!(consistency_proof(&t, 4, 3).is_err());
    }

    #[test]
    fn a_missing_stored_subtree_is_named() {
        let t = tree(8);
        let holes = |level: u32, index: u64| if (level, index) == (1, 1) { None } else { t.node(level, index) };
        assert_eq!(inclusion_proof(&holes, 0, 8), Err(ProofError::Missing(1, 1)));
    }

    /// The same roots and the same proof bytes as an independent implementation.
    #[test]
    fn agrees_with_ct_merkle() {
        use ct_merkle::CtMerkleTree;
        let mut theirs = CtMerkleTree::<Sha256, Hash>::new();
        let mut ours = MemoryTree::new();
        for n in 1..=45u64 {
            theirs.push(row(n - 1));
            ours.push(&row(n - 1));
            let their_root = theirs.root();
            assert_eq!(&their_root.as_bytes()[..], &ours.root()[..], "root at {n}");
            for m in 0..n {
                let proof = inclusion_proof(&ours, m, n).unwrap().concat();
                assert_eq!(theirs.prove_inclusion(m as usize).as_bytes(), proof.as_slice(), "inclusion {m} in {n}");
            }
            for m in 1..n {
                let proof = consistency_proof(&ours, m, n).unwrap().concat();
                assert_eq!(theirs.prove_consistency(m as usize).as_bytes(), proof.as_slice(), "consistency {m} to {n}");
            }
        }
    }

    #[test]
    fn compact_ranges_built_apart_give_the_whole_root() {
        let t = tree(70);
        for mid in [0u64, 1, 5, 8, 13, 32, 35, 69, 70] {
            let mut left = CompactRange::new(0);
            (0..mid).for_each(|i| left.push(leaf_hash(&row(i))));
            let mut right = CompactRange::new(mid);
            for end in mid..70 {
                right.push(leaf_hash(&row(end)));
                let before = left.frontier().unwrap();
                assert_eq!(Some(right.root_after(&before)), t.root_at(end + 1), "mid {mid} end {end}");
            }
            assert_eq!(left.frontier().map(|f| frontier_root(&f)), t.root_at(mid));
        }
    }
}
