//! Signed checkpoints: a text note naming a tree size, its root and the row at its end,
//! signed with ECDSA P-256 over SHA-256. The format is the contract an auditor's own
//! tools rely on (API.md, "Audit proofs, checkpoints and archive"):
//!
//! ```text
//! vigilo.audit/<workspace_id>
//! <tree size>
//! <root, standard base64>
//! <hash of row seq = size, or the genesis hash>
//! <created_at, RFC 3339 UTC>
//!
//! — <key name> <base64 of 4-byte key id || DER signature>
//! ```
//!
//! Only the five body lines (each with its `\n`) are signed, so more signature lines
//! may follow (a rotated key signs beside the old one).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};

use crate::audit::{ChainBreak, VerifyReport};
use crate::merkle::Hash;

/// The first line's prefix; the workspace id follows.
pub const ORIGIN_PREFIX: &str = "vigilo.audit/";
/// The signature line's mark: an em dash and a space.
const SIGNATURE_MARK: &str = "\u{2014} ";
/// The algorithm `GET /audit/key` names.
pub const ALGORITHM: &str = "ecdsa-p256-sha256";

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub key_name: String,
    pub key_id: [u8; 4],
    /// DER-encoded ECDSA signature.
    pub signature: Vec<u8>,
}

/// A checkpoint: what it states, and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub workspace_id: String,
    pub tree_size: u64,
    pub root: Hash,
    /// Lowercase hex: the hash of row `tree_size`, or the genesis hash when empty.
    pub head_hash: String,
    pub created_at: String,
    pub signatures: Vec<NoteSignature>,
}

/// Why a note is not a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a checkpoint note: {0}")]
pub struct NoteError(pub String);

fn bad(what: &str) -> NoteError {
    NoteError(what.to_owned())
}

/// The key id: the first four bytes of SHA-256 over the public key's DER
/// SubjectPublicKeyInfo.
pub fn key_id(spki_der: &[u8]) -> [u8; 4] {
    let d = Sha256::digest(spki_der);
    [d[0], d[1], d[2], d[3]]
}

impl Checkpoint {
    /// The five signed lines, each ending in `\n`.
    pub fn body(&self) -> String {
        format!(
            "{ORIGIN_PREFIX}{}\n{}\n{}\n{}\n{}\n",
            self.workspace_id,
            self.tree_size,
            STANDARD.encode(self.root),
            self.head_hash,
            self.created_at
        )
    }

    /// The whole note: the body, a blank line, and a line per signature.
    pub fn note(&self) -> String {
        let mut out = self.body();
        out.push('\n');
        for s in &self.signatures {
            let mut blob = s.key_id.to_vec();
            blob.extend_from_slice(&s.signature);
            out.push_str(&format!("{SIGNATURE_MARK}{} {}\n", s.key_name, STANDARD.encode(blob)));
        }
        out
    }

    /// Reads a note, strictly: exactly the contract's lines, nothing else.
    pub fn parse(note: &str) -> Result<Checkpoint, NoteError> {
        let (body, sigs) = note.split_once("\n\n").ok_or_else(|| bad("no blank line after the body"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, head, created] = lines[..] else {
            return Err(bad("the body must have five lines"));
        };
        let workspace_id = origin.strip_prefix(ORIGIN_PREFIX).filter(|w| !w.is_empty()).ok_or_else(|| bad("origin"))?;
        let canonical_size = |s: &str| s == "0" || (!s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()));
        let tree_size = size.parse::<u64>().ok().filter(|_| canonical_size(size)).ok_or_else(|| bad("tree size"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .filter(|r: &Hash| STANDARD.encode(r) == root)
            .ok_or_else(|| bad("root"))?;
        let hex_ok = head.len() == 64 && head.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(bad("head hash"));
        }
        if crate::time::parse(created).is_none() || !created.ends_with('Z') {
            return Err(bad("created_at"));
        }
        if !sigs.ends_with('\n') && !sigs.is_empty() {
            return Err(bad("a signature line must end in a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs.lines() {
            let rest = line.strip_prefix(SIGNATURE_MARK).ok_or_else(|| bad("signature line"))?;
            let (name, blob) = rest.rsplit_once(' ').ok_or_else(|| bad("signature line"))?;
            let blob = STANDARD.decode(blob).map_err(|_| bad("signature encoding"))?;
            if name.is_empty() || name.contains(char::is_whitespace) || blob.len() < 5 {
                return Err(bad("signature line"));
            }
            signatures.push(NoteSignature {
                key_name: name.to_owned(),
                key_id: [blob[0], blob[1], blob[2], blob[3]],
                signature: blob[4..].to_vec(),
            });
        }
        Ok(Checkpoint {
            workspace_id: workspace_id.to_owned(),
            tree_size,
            root,
            head_hash: head.to_owned(),
            created_at: created.to_owned(),
            signatures,
        })
    }

    /// Whether a signature by `key` (with its key id) covers the body.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        let body = self.body();
        self.signatures
            .iter()
            .filter(|s| s.key_id == key.id)
            .any(|s| Signature::from_der(&s.signature).is_ok_and(|sig| key.key.verify(body.as_bytes(), &sig).is_ok()))
    }
}

/// A checkpoint signing key's public half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    pub id: [u8; 4],
    pub spki_der: Vec<u8>,
}

impl PublicKey {
    pub fn from_der(spki_der: &[u8]) -> Result<PublicKey, NoteError> {
        let key = VerifyingKey::from_public_key_der(spki_der).map_err(|_| bad("not a P-256 public key"))?;
        Ok(PublicKey { key, id: key_id(spki_der), spki_der: spki_der.to_vec() })
    }

    pub fn from_pem(pem: &str) -> Result<PublicKey, NoteError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| bad("not a P-256 public key PEM"))?;
        let der = key.to_public_key_der().map_err(|_| bad("public key"))?;
        PublicKey::from_der(der.as_bytes())
    }

    pub fn pem(&self) -> String {
        self.key.to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap_or_default()
    }

    /// The key id as `GET /audit/key` shows it: lowercase hex.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }
}

/// A break at `seq` that names no row (the row is missing, or the fault is outside
/// the rows).
pub fn missing_at(seq: u64, reason: &str, detail: String) -> ChainBreak {
    ChainBreak { row_id: None, seq, reason: reason.into(), detail }
}

/// Checks the checkpoints `notes` against a walk's `report` (the roots it recomputed),
/// with the keys that may sign: the first failure in tree-size order, if any. A note
/// that cannot be read, names another workspace or carries no valid signature by a
/// known key is forged (or unsigned); one beyond the walked chain means its tail was
/// cut off; one whose root or last row differs from the rows means a rewrite.
pub fn check_checkpoints(
    workspace_id: &str,
    notes: &[String],
    report: &VerifyReport,
    keys: &[PublicKey],
) -> (u64, Option<ChainBreak>) {
    let mut breaks = Vec::new();
    for note in notes {
        let c = match Checkpoint::parse(note) {
            Ok(c) => c,
            Err(e) => {
                breaks.push(missing_at(0, "checkpoint_forged", format!("a checkpoint is unreadable: {e}")));
                continue;
            }
        };
        let named = format!("the checkpoint of tree size {} made at {}", c.tree_size, c.created_at);
        if c.workspace_id != workspace_id {
            breaks.push(missing_at(
                c.tree_size,
                "checkpoint_forged",
                format!("{named} names workspace {}", c.workspace_id),
            ));
        } else if c.signatures.is_empty() {
            breaks.push(missing_at(c.tree_size, "checkpoint_unsigned", format!("{named} carries no signature")));
        } else if !keys.iter().any(|k| c.signed_by(k)) {
            breaks.push(missing_at(
                c.tree_size,
                "checkpoint_forged",
                format!("{named} is not signed by the audit key"),
            ));
        } else if c.tree_size > report.rows_checked {
            if report.ok {
                let detail =
                    format!("{named} covers {} rows but only {} are present", c.tree_size, report.rows_checked);
                breaks.push(missing_at(report.rows_checked + 1, "tail_truncated", detail));
            }
        } else {
            let root = report.roots.iter().find(|r| r.size == c.tree_size);
            match root {
                Some(r) if r.root == c.root && r.head_hash == c.head_hash => {}
                Some(_) => {
                    let detail = format!("{named} signs a root the rows no longer hash to: the chain was rewritten");
                    breaks.push(missing_at(c.tree_size, "root_mismatch", detail));
                }
                // Before a break: the chain's own break is reported.
                None => {}
            }
        }
    }
    breaks.sort_by_key(|b| b.seq);
    (notes.len() as u64, breaks.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
    }

    fn public(k: &SigningKey) -> PublicKey {
        PublicKey::from_der(k.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap()
    }

    fn signed(k: &SigningKey) -> Checkpoint {
        let mut c = Checkpoint {
            workspace_id: "0191-ws".into(),
            tree_size: 12,
            root: [3u8; 32],
            head_hash: "ab".repeat(32),
            created_at: "2026-12-07T20:00:00Z".into(),
            signatures: vec![],
        };
        let sig: Signature = k.sign(c.body().as_bytes());
        c.signatures.push(NoteSignature {
            key_name: "vigilo.audit".into(),
            key_id: public(k).id,
            signature: sig.to_der().as_bytes().to_vec(),
        });
        c
    }

    #[test]
    fn a_note_reads_back_and_verifies() {
        let k = key();
        let c = signed(&k);
        let note = c.note();
        assert!(note.starts_with("vigilo.audit/0191-ws\n12\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n"));
        assert!(note.contains("\n\n\u{2014} vigilo.audit "));
        let back = Checkpoint::parse(&note).unwrap();
        assert_eq!(back, c);
        assert!(back.signed_by(&public(&k)));
        let pem = public(&k).pem();
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), public(&k));
    }

    #[test]
    fn an_altered_body_or_another_key_fails() {
        let k = key();
        let c = signed(&k);
        let bigger = c.note().replacen("\n12\n", "\n13\n", 1);
        assert!(!Checkpoint::parse(&bigger).unwrap().signed_by(&public(&k)));
        let other = SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
        assert!(!c.signed_by(&public(&other)));
        let unsigned = Checkpoint { signatures: vec![], ..c.clone() };
        assert!(!unsigned.signed_by(&public(&k)));
    }

    #[test]
    fn malformed_notes_are_refused() {
        let note = signed(&key()).note();
        for bad in [
            note.replacen("vigilo.audit/", "other/", 1),
            note.replacen("\n12\n", "\n012\n", 1),
            note.replacen("\n12\n", "\n-1\n", 1),
            note.replacen("=\n", "\n", 1),
            note.replacen("2026-12-07T20:00:00Z", "yesterday", 1),
            note.replacen("\n\n", "\n", 1),
            note.replacen("\u{2014} ", "- ", 1),
            note.replacen(&"ab".repeat(32), "AB", 1),
            String::new(),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
