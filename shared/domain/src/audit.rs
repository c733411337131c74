//! The audit log's hash chain: how a row's hash is computed, and a streaming verifier
//! that finds the first break (edited, deleted, reordered, forged or cut-off rows).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::canonical::canonical_json;
use crate::merkle::{self, CompactRange};

/// One immutable audit row, exactly as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: String,
    pub seq: u64,
    pub workspace_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    /// The user who acted; `None` for the system (then `metadata.actor_kind` says what).
    pub actor: Option<String>,
    /// Left out for viewers: values are for members and above.
    #[schema(required = false)]
    pub old_value: Value,
    #[schema(required = false)]
    pub new_value: Value,
    pub metadata: Value,
    /// The RFC 3339 text that was hashed, kept verbatim.
    pub created_at: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The chain's tip, stored beside the rows so a cut-off tail is detectable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
    pub created_at: Option<String>,
    /// The Merkle tree's frontier over rows `1..=seq` (hex, largest subtree first; see
    /// [`crate::merkle`]): what sealing the next row needs of the tree. `None` only on
    /// a head written before the tree was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontier: Option<Vec<String>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The `prev_hash` of a workspace's first row: hex SHA-256 of `"vigilo:" + workspace_id`.
pub fn genesis_hash(workspace_id: &str) -> String {
    sha256_hex(format!("vigilo:{workspace_id}").as_bytes())
}

/// The fields a row's hash covers, in the contract's names.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    pub prev_hash: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub actor_id: Option<&'a str>,
    pub old_value: &'a Value,
    pub new_value: &'a Value,
    pub metadata: &'a Value,
    pub created_at: &'a str,
}

/// The hashed document, fields by reference: serialised straight into the hasher,
/// with no copy of the values and no intermediate text.
#[derive(Serialize)]
struct Hashed<'a> {
    prev_hash: &'a str,
    action: &'a str,
    target_type: &'a str,
    target_id: &'a str,
    actor_id: Option<&'a str>,
    old_value: &'a Value,
    new_value: &'a Value,
    metadata: &'a Value,
    created_at: &'a str,
}

/// Feeds written bytes to SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HashInput<'_> {
    /// Lowercase hex SHA-256 of the RFC 8785 canonical JSON of the fields.
    pub fn hash(&self) -> String {
        let doc = Hashed {
            prev_hash: self.prev_hash,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            actor_id: self.actor_id,
            old_value: self.old_value,
            new_value: self.new_value,
            metadata: self.metadata,
            created_at: self.created_at,
        };
        let mut w = HashWriter(Sha256::new());
        // Values hold no NaN or infinities, the only inputs the canonicaliser refuses.
        if serde_json_canonicalizer::to_writer(&doc, &mut w).is_err() {
            return self.hash_of_document();
        }
        format!("{:x}", w.0.finalize())
    }

    /// The same hash through the plain path: the document as a JSON value, then its
    /// canonical text. Kept as the reference the streamed hash is tested against.
    pub fn hash_of_document(&self) -> String {
        let doc = json!({
            "prev_hash": self.prev_hash,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "actor_id": self.actor_id,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "metadata": self.metadata,
            "created_at": self.created_at,
        });
        sha256_hex(canonical_json(&doc).as_bytes())
    }
}

/// The fields of a row that link it into its chain, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link<'a> {
    pub id: &'a str,
    pub seq: u64,
    pub workspace_id: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl AuditRow {
    pub fn link(&self) -> Link<'_> {
        Link {
            id: &self.id,
            seq: self.seq,
            workspace_id: &self.workspace_id,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }

    pub fn hash_input(&self) -> HashInput<'_> {
        HashInput {
            prev_hash: &self.prev_hash,
            action: &self.action,
            target_type: &self.target_type,
            target_id: &self.target_id,
            actor_id: self.actor.as_deref(),
            old_value: &self.old_value,
            new_value: &self.new_value,
            metadata: &self.metadata,
            created_at: &self.created_at,
        }
    }
}

/// Where and why a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainBreak {
    /// The offending row; `None` when the row is missing altogether (a cut-off tail).
    pub row_id: Option<String>,
    pub seq: u64,
    /// A stable code: `seq_gap`, `prev_hash_mismatch`, `hash_mismatch`,
    /// `workspace_mismatch`, `unreadable_row`, `tail_truncated` (rows the head or a
    /// signed checkpoint counts are missing), `head_mismatch`, `root_mismatch` (a
    /// signed root the rows no longer hash to), `checkpoint_forged`,
    /// `checkpoint_unsigned`, `tree_inconsistent` (the stored subtree hashes).
    pub reason: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub rows_checked: u64,
    pub first_hash: Option<String>,
    pub last_hash: Option<String>,
    #[serde(rename = "break")]
    pub chain_break: Option<ChainBreak>,
    /// Signed checkpoints checked against the rows.
    #[serde(default)]
    pub checkpoints_checked: u64,
    /// The Merkle tree's roots at the sizes asked for (signed checkpoints') that the
    /// walk reached, and at its end: what a checkpoint is compared with.
    #[serde(skip)]
    #[schema(ignore)]
    pub roots: Vec<TreeRoot>,
}

/// The tree over the first `size` rows as a walk recomputed it from the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRoot {
    pub size: u64,
    pub root: crate::merkle::Hash,
    /// The hash of row `size` (the genesis hash for the empty tree).
    pub head_hash: String,
}

/// A mark the walk reached: the tree's state then, to be folded once the part before
/// it is known.
#[derive(Debug, Clone)]
struct Reached {
    range: CompactRange,
    head_hash: String,
}

/// Walks a chain from its first row, one row at a time, so a long chain is verified in
/// constant memory. Stops at the first break.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    workspace_id: String,
    expected_prev: String,
    expected_seq: u64,
    rows_checked: u64,
    first_hash: Option<String>,
    chain_break: Option<ChainBreak>,
    /// For a later part of a chain: its first row's id, seq and `prev_hash`, once seen.
    joined: Option<Option<(String, u64, String)>>,
    /// The tree over the rows walked, which for a later part starts at its first row.
    tree: CompactRange,
    /// Tree sizes whose root is wanted, ascending, and how many of them are behind.
    marks: Vec<u64>,
    next_mark: usize,
    reached: Vec<Reached>,
}

impl ChainVerifier {
    pub fn new(workspace_id: &str) -> ChainVerifier {
        ChainVerifier {
            workspace_id: workspace_id.to_owned(),
            expected_prev: genesis_hash(workspace_id),
            expected_seq: 1,
            rows_checked: 0,
            first_hash: None,
            chain_break: None,
            joined: None,
            tree: CompactRange::new(0),
            marks: Vec::new(),
            next_mark: 0,
            reached: Vec::new(),
        }
    }

    /// Asks for the tree's root at each of `sizes` (a signed checkpoint's size): the
    /// report carries those the walk reaches, recomputed from the rows.
    pub fn with_marks(mut self, sizes: &[u64]) -> ChainVerifier {
        let mut marks: Vec<u64> = sizes.to_vec();
        marks.sort_unstable();
        marks.dedup();
        self.marks = marks;
        self.next_mark = 0;
        if self.joined.is_none() && self.marks.first() == Some(&0) {
            let head_hash = genesis_hash(&self.workspace_id);
            self.reached.push(Reached { range: CompactRange::new(0), head_hash });
            self.next_mark = 1;
        }
        self
    }

    /// Records the mark the tree has just reached, if one has.
    fn take_mark(&mut self, head_hash: &str) {
        while self.marks.get(self.next_mark).is_some_and(|&m| m < self.tree.end()) {
            self.next_mark += 1;
        }
        if self.marks.get(self.next_mark) == Some(&self.tree.end()) {
            self.next_mark += 1;
            self.reached.push(Reached { range: self.tree.clone(), head_hash: head_hash.to_owned() });
        }
    }

    /// The roots this walk reached (and its end's, when `with_end` and it walked any
    /// row), given the frontier of the tree before the part it walked (empty for the
    /// first part).
    fn roots(&self, before: &[merkle::Hash], with_end: bool) -> Vec<TreeRoot> {
        let mut roots: Vec<TreeRoot> = self
            .reached
            .iter()
            .map(|r| TreeRoot { size: r.range.end(), root: r.range.root_after(before), head_hash: r.head_hash.clone() })
            .collect();
        if with_end && self.rows_checked > 0 && roots.last().is_none_or(|r| r.size != self.tree.end()) {
            let head_hash = self.expected_prev.clone();
            roots.push(TreeRoot { size: self.tree.end(), root: self.tree.root_after(before), head_hash });
        }
        roots
    }

    /// A verifier for a later part of a chain, walked beside the part before it: its
    /// first row's `seq` and `prev_hash` are taken as found, and [`ChainVerifier::join`]
    /// checks them against the end of the part before.
    pub fn later_part(workspace_id: &str) -> ChainVerifier {
        ChainVerifier { joined: Some(None), ..ChainVerifier::new(workspace_id) }
    }

    /// Records a break found outside the rows (an archive segment missing or altered),
    /// unless the walk broke earlier.
    pub fn record_break(&mut self, b: ChainBreak) {
        if self.chain_break.is_none() {
            self.chain_break = Some(b);
        }
    }

    /// Records a row that is not readable as a row at all: a break in itself.
    pub fn unreadable(&mut self, row_id: Option<String>, seq: u64) {
        if self.chain_break.is_none() {
            self.chain_break = Some(ChainBreak {
                row_id,
                seq,
                reason: "unreadable_row".into(),
                detail: "the stored row is not a valid audit row".into(),
            });
        }
    }

    /// The report over this part and the `later` one walked beside it, ending at `head`:
    /// the first break in `seq` order, where the two parts meet included.
    pub fn join(self, later: ChainVerifier, head: Option<&ChainHead>) -> VerifyReport {
        if self.broken() {
            return self.report();
        }
        let mut roots = self.roots(&[], later.rows_checked == 0);
        if let Some(before) = self.tree.frontier() {
            roots.extend(later.roots(&before, true).into_iter().filter(|r| r.size > self.tree.end()));
        }
        let first_hash = self.first_hash.clone();
        let at = |id: &str, seq: u64, reason: &str, detail: String| ChainBreak {
            row_id: Some(id.to_owned()),
            seq,
            reason: reason.into(),
            detail,
        };
        let meets = match &later.joined {
            Some(Some((id, seq, _))) if *seq != self.expected_seq => {
                let detail = format!("expected seq {}, found {seq}: rows are missing or reordered", self.expected_seq);
                Some(at(id, *seq, "seq_gap", detail))
            }
            Some(Some((id, seq, prev))) if *prev != self.expected_prev => {
                let detail = format!("prev_hash {prev} does not match the previous row's hash {}", self.expected_prev);
                Some(at(id, *seq, "prev_hash_mismatch", detail))
            }
            _ => None,
        };
        if let Some(b) = meets {
            let mut report = self.report();
            report.ok = false;
            report.chain_break = Some(b);
            return report;
        }
        if later.rows_checked == 0 && !later.broken() {
            // Nothing after the first part: it ends the chain.
            return ChainVerifier { expected_seq: self.expected_seq, ..self }.finish(head);
        }
        let (rows, last) = (self.rows_checked, (self.rows_checked > 0).then_some(self.expected_prev));
        let mut report = if later.broken() { later.report() } else { later.finish(head) };
        report.rows_checked += rows;
        report.first_hash = first_hash.or(report.first_hash);
        report.last_hash = report.last_hash.or(last);
        report.roots = roots;
        report
    }

    /// The report of a walk with no stored head to end at (an offline copy, whose
    /// signed checkpoints say how long the chain must be).
    pub fn finish_without_head(self) -> VerifyReport {
        self.report()
    }

    /// What was walked, with no head to compare with (a part of a chain, or a broken one).
    fn report(self) -> VerifyReport {
        let roots = if self.joined.is_none() { self.roots(&[], true) } else { Vec::new() };
        VerifyReport {
            roots,
            checkpoints_checked: 0,
            ok: self.chain_break.is_none(),
            rows_checked: self.rows_checked,
            first_hash: self.first_hash,
            last_hash: (self.rows_checked > 0).then_some(self.expected_prev),
            chain_break: self.chain_break,
        }
    }

    pub fn broken(&self) -> bool {
        self.chain_break.is_some()
    }

    pub fn rows_checked(&self) -> u64 {
        self.rows_checked
    }

    fn fail(&mut self, row: &Link<'_>, reason: &str, detail: String) {
        self.chain_break =
            Some(ChainBreak { row_id: Some(row.id.to_owned()), seq: row.seq, reason: reason.into(), detail });
    }

    /// Checks the next row in `seq` order. Returns `false` once the chain is broken.
    pub fn push(&mut self, row: &AuditRow) -> bool {
        let computed = row.hash_input().hash();
        self.push_hashed(row, &computed)
    }

    /// As [`ChainVerifier::push`], with the row's content already hashed (`computed`),
    /// so hashing can run on other threads: each row's hash depends only on the row,
    /// and only the linking is sequential.
    pub fn push_hashed(&mut self, row: &AuditRow, computed: &str) -> bool {
        self.push_link(&row.link(), |stored| stored == computed, || computed.to_owned())
    }

    /// The linking itself, over a row's borrowed fields: `matches(stored hash)` says
    /// whether the content hashes to it, `computed()` names the content's hash for the
    /// report. Nothing is allocated for a row that links.
    pub fn push_link(
        &mut self,
        row: &Link<'_>,
        matches: impl FnOnce(&str) -> bool,
        computed: impl FnOnce() -> String,
    ) -> bool {
        if self.broken() {
            return false;
        }
        if row.workspace_id != self.workspace_id {
            self.fail(row, "workspace_mismatch", format!("row belongs to workspace {}", row.workspace_id));
        } else if let Some(joined @ None) = &mut self.joined {
            // The first row of a later part: its seq and link are checked where the
            // parts meet, its content here.
            *joined = Some((row.id.to_owned(), row.seq, row.prev_hash.to_owned()));
            self.expected_seq = row.seq;
            self.tree = CompactRange::new(row.seq.saturating_sub(1));
            if !matches(row.hash) {
                let detail = format!("stored hash {} but the row's content hashes to {}", row.hash, computed());
                self.fail(row, "hash_mismatch", detail);
            }
        } else if row.seq != self.expected_seq {
            let detail =
                format!("expected seq {}, found {}: rows are missing or reordered", self.expected_seq, row.seq);
            self.fail(row, "seq_gap", detail);
        } else if row.prev_hash != self.expected_prev {
            let detail =
                format!("prev_hash {} does not match the previous row's hash {}", row.prev_hash, self.expected_prev);
            self.fail(row, "prev_hash_mismatch", detail);
        } else if !matches(row.hash) {
            let detail = format!("stored hash {} but the row's content hashes to {}", row.hash, computed());
            self.fail(row, "hash_mismatch", detail);
        }
        if self.broken() {
            return false;
        }
        self.rows_checked += 1;
        if self.first_hash.is_none() {
            self.first_hash = Some(row.hash.to_owned());
        }
        self.expected_prev.clear();
        self.expected_prev.push_str(row.hash);
        self.expected_seq += 1;
        // The content hashed to `row.hash`, so it is 64 hex digits.
        if let Some(h) = merkle::parse_hex(row.hash) {
            self.tree.push(merkle::leaf_hash(&h));
        }
        if self.next_mark < self.marks.len() {
            self.take_mark(row.hash);
        }
        true
    }

    /// Compares the end of the walked chain with the stored head, then reports.
    pub fn finish(mut self, head: Option<&ChainHead>) -> VerifyReport {
        let roots = if self.joined.is_none() { self.roots(&[], true) } else { Vec::new() };
        let last_hash = (self.rows_checked > 0).then(|| self.expected_prev.clone());
        if self.chain_break.is_none() {
            let head_seq = head.map_or(0, |h| h.seq);
            let walked = self.expected_seq - 1;
            if head_seq > walked {
                self.chain_break = Some(ChainBreak {
                    row_id: None,
                    seq: walked + 1,
                    reason: "tail_truncated".into(),
                    detail: format!("the chain head records {head_seq} rows but only {walked} are present"),
                });
            } else if head_seq < walked || head.is_some_and(|h| Some(&h.hash) != last_hash.as_ref()) {
                self.chain_break = Some(ChainBreak {
                    row_id: None,
                    seq: walked,
                    reason: "head_mismatch".into(),
                    detail: format!("the chain head (seq {head_seq}) does not match the last row (seq {walked})"),
                });
            }
        }
        VerifyReport {
            ok: self.chain_break.is_none(),
            rows_checked: self.rows_checked,
            first_hash: self.first_hash,
            last_hash,
            chain_break: self.chain_break,
            checkpoints_checked: 0,
            roots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(ws: &str, n: u64) -> (Vec<AuditRow>, ChainHead) {
        let mut prev = genesis_hash(ws);
        let mut rows = Vec::new();
        for seq in 1..=n {
            let mut row = AuditRow {
                id: format!("r{seq}"),
                seq,
                workspace_id: ws.into(),
                action: "change.create".into(),
                target_type: "ChangeRequest".into(),
                target_id: format!("c{seq}"),
                actor: (seq % 2 == 0).then(|| "alice".into()),
                old_value: Value::Null,
                new_value: json!({"title": format!("t{seq}")}),
                metadata: json!({}),
                created_at: format!("2026-11-01T00:00:{:02}Z", seq % 60),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            row.hash = row.hash_input().hash();
            prev = row.hash.clone();
            rows.push(row);
        }
        let head = ChainHead { seq: n, hash: prev, created_at: None, frontier: None };
        (rows, head)
    }

    fn verify(rows: &[AuditRow], head: &ChainHead) -> VerifyReport {
        let mut v = ChainVerifier::new("w1");
        for r in rows {
            if !v.push(r) {
                break;
            }
        }
        v.finish(Some(head))
    }

    /// Verifies `rows` in two parts split before index `at`, as verification over two
    /// readers does.
    fn verify_split(rows: &[AuditRow], head: &ChainHead, at: usize) -> VerifyReport {
        let (a, b) = rows.split_at(at.min(rows.len()));
        let (mut first, mut later) = (ChainVerifier::new("w1"), ChainVerifier::later_part("w1"));
        for r in a {
            if !first.push(r) {
                break;
            }
        }
        for r in b {
            if !later.push(r) {
                break;
            }
        }
        first.join(later, Some(head))
    }

    #[test]
    fn a_walk_recomputes_the_tree_roots_asked_for_however_it_is_split() {
        let (rows, head) = chain("w1", 13);
        let mut tree = merkle::MemoryTree::new();
        for r in &rows {
            tree.push(&merkle::parse_hex(&r.hash).unwrap());
        }
        let marks = [0, 1, 4, 5, 8, 12, 13, 40];
        for at in 0..=rows.len() {
            let (a, b) = rows.split_at(at);
            let mut first = ChainVerifier::new("w1").with_marks(&marks);
            let mut later = ChainVerifier::later_part("w1").with_marks(&marks);
            a.iter().for_each(|r| assert!(first.push(r)));
            b.iter().for_each(|r| assert!(later.push(r)));
            let report = first.join(later, Some(&head));
            assert!(report.ok, "{at}");
            for size in [0u64, 1, 4, 5, 8, 12, 13] {
                let got = report.roots.iter().find(|r| r.size == size).unwrap_or_else(|| panic!("{size} at {at}"));
                assert_eq!(Some(got.root), tree.root_at(size), "root {size} split at {at}");
                let hash = if size == 0 { genesis_hash("w1") } else { rows[size as usize - 1].hash.clone() };
                assert_eq!(got.head_hash, hash);
            }
            assert!(report.roots.iter().all(|r| r.size <= 13), "no root beyond the chain");
        }
    }

    #[test]
    fn a_chain_split_anywhere_verifies_as_one_walk_does() {
        type Tamper = Box<dyn Fn(&mut Vec<AuditRow>, &mut ChainHead)>;
        let tampers: Vec<Tamper> = vec![
            Box::new(|_, _| {}),
            Box::new(|r, _| r[3].new_value = json!({"title": "forged"})),
            Box::new(|r, _| drop(r.remove(3))),
            Box::new(|r, _| drop(r.drain(2..5))),
            Box::new(|r, _| r.swap(2, 3)),
            Box::new(|r, _| {
                r[3].new_value = json!({"title": "forged"});
                r[3].hash = r[3].hash_input().hash();
            }),
            Box::new(|r, _| r.truncate(5)),
            Box::new(|r, _| drop(r.drain(0..4))),
            Box::new(|r, _| r[4].workspace_id = "w2".into()),
            Box::new(|_, h| h.hash = "0".repeat(64)),
            Box::new(|r, h| {
                r.clear();
                h.seq = 0;
            }),
        ];
        for (i, tamper) in tampers.iter().enumerate() {
            let (mut rows, mut head) = chain("w1", 8);
            tamper(&mut rows, &mut head);
            let whole = verify(&rows, &head);
            for at in 0..=rows.len() {
                assert_eq!(verify_split(&rows, &head, at), whole, "tamper {i}, split at {at}");
            }
        }
    }

    #[test]
    fn genesis_is_sha256_of_the_prefixed_workspace_id() {
        // sha256("vigilo:w1"), computed independently.
        assert_eq!(genesis_hash("w1"), format!("{:x}", Sha256::digest(b"vigilo:w1")));
        assert_eq!(genesis_hash("w1").len(), 64);
    }

    #[test]
    fn the_hash_covers_the_canonical_document() {
        let (rows, _) = chain("w1", 1);
        let r = &rows[0];
        let doc = format!(
            r#"{{"action":"change.create","actor_id":null,"created_at":"{}","metadata":{{}},"new_value":{{"title":"t1"}},"old_value":null,"prev_hash":"{}","target_id":"c1","target_type":"ChangeRequest"}}"#,
            r.created_at, r.prev_hash
        );
        assert_eq!(r.hash, format!("{:x}", Sha256::digest(doc.as_bytes())));
    }

    #[test]
    fn the_streamed_hash_is_the_hash_of_the_canonical_document() {
        let values = [
            json!(null),
            json!({"z": 1, "a": [1.5, 1e21, -0.0, "é😀\u{1}\"\\"], "é": {"b": true, "A": null}}),
            json!({"title": "Rotate the certificate", "number": "CHG-00001", "version": 3, "n": 123456789012u64}),
            json!(["\u{2028}", 0.1, 100, {"": ""}]),
        ];
        for (i, old) in values.iter().enumerate() {
            for new in &values {
                let input = HashInput {
                    prev_hash: "ab",
                    action: "change.update",
                    target_type: "ChangeRequest",
                    target_id: "é",
                    actor_id: (i % 2 == 0).then_some("mia"),
                    old_value: old,
                    new_value: new,
                    metadata: &values[(i + 1) % values.len()],
                    created_at: "2030-01-15T09:00:00.000Z",
                };
                assert_eq!(input.hash(), input.hash_of_document());
            }
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (rows, head) = chain("w1", 5);
        let r = verify(&rows, &head);
        assert!(r.ok);
        assert_eq!(r.rows_checked, 5);
        assert_eq!(r.first_hash.as_deref(), Some(rows[0].hash.as_str()));
        assert_eq!(r.last_hash.as_deref(), Some(head.hash.as_str()));
    }

    #[test]
    fn an_edited_row_is_a_hash_mismatch() {
        let (mut rows, head) = chain("w1", 5);
        rows[2].new_value = json!({"title": "forged"});
        let b = verify(&rows, &head).chain_break.unwrap();
        assert_eq!((b.row_id.as_deref(), b.seq, b.reason.as_str()), (Some("r3"), 3, "hash_mismatch"));
    }

    #[test]
    fn a_deleted_row_is_a_seq_gap() {
        let (mut rows, head) = chain("w1", 5);
        rows.remove(1);
        let b = verify(&rows, &head).chain_break.unwrap();
        assert_eq!((b.seq, b.reason.as_str()), (3, "seq_gap"));
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_next_link() {
        let (mut rows, head) = chain("w1", 5);
        rows[1].new_value = json!({"title": "forged"});
        rows[1].hash = rows[1].hash_input().hash();
        let b = verify(&rows, &head).chain_break.unwrap();
        assert_eq!((b.seq, b.reason.as_str()), (3, "prev_hash_mismatch"));
    }

    #[test]
    fn a_cut_tail_is_caught_by_the_head() {
        let (mut rows, head) = chain("w1", 5);
        rows.truncate(3);
        let b = verify(&rows, &head).chain_break.unwrap();
        assert_eq!((b.row_id, b.seq, b.reason.as_str()), (None, 4, "tail_truncated"));
    }

    #[test]
    fn a_head_that_disagrees_with_the_last_row_is_caught() {
        let (rows, mut head) = chain("w1", 3);
        head.hash = "0".repeat(64);
        assert_eq!(verify(&rows, &head).chain_break.unwrap().reason, "head_mismatch");
    }

    #[test]
    fn rows_of_another_workspace_are_refused() {
        let (rows, head) = chain("w2", 2);
        assert_eq!(verify(&rows, &head).chain_break.unwrap().reason, "workspace_mismatch");
    }
}
