//! An auditor's offline copy of a workspace's audit log, and its verification with
//! nothing but the public key: no store, no network.
//!
//! `vigilo audit export --out FOLDER` writes
//! - `segments/{first}-{last}.jsonl`: the archived rows, as archived;
//! - `segments.json`: each segment's rows and SHA-256, as the table recorded them;
//! - `live.jsonl`: the rows still in the table, in `seq` order;
//! - `checkpoints/*.note`: every signed checkpoint;
//! - `public-key.pem`: the signing key's public half.
//!
//! `vigilo audit verify --offline FOLDER [--key PEM]` walks the segments and the live
//! rows as one chain, recomputes the tree, and checks every checkpoint's signature and
//! root against it. Exit 0 intact, 1 broken, 2 unusable input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;
use vigilo_app::keys;
use vigilo_app::services::archive::{segment_file, Segment};
use vigilo_app::store::Query;
use vigilo_domain::audit::{AuditRow, ChainBreak, ChainVerifier, VerifyReport};
use vigilo_domain::checkpoint::{check_checkpoints, Checkpoint, PublicKey};

use crate::audit::Progress;
use crate::backend::Backend;

fn write(path: &Path, body: &[u8]) -> Result<(), String> {
    fs::write(path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `vigilo audit export`.
pub fn export(data: &Path, backend: Backend, slug: &str, out: &Path) -> Result<ExitCode, String> {
    if fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} is not empty: export into a new folder", out.display()));
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (app, ws) = crate::audit::open(data, backend, slug).await?;
        let (signer, archive) = match (app.signer.clone(), app.archive.clone()) {
            (Some(s), Some(a)) => (s, a),
            _ => return Err("no audit signing key or archive is configured".into()),
        };
        let w = ws.id.as_str();
        for sub in ["segments", "checkpoints"] {
            fs::create_dir_all(out.join(sub)).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        }
        // The head first: rows sealed while this runs are the next export's.
        let head = vigilo_app::txn::load_head(&*app.table, w).await.map_err(|e| e.to_string())?.map_or(0, |h| h.seq);
        let segments = app.archive_segments(w).await.map_err(|e| e.to_string())?;
        for s in &segments {
            let body = archive.get(&s.object).await.map_err(|e| e.to_string())?;
            // A segment the store lost is left out: the verification names it.
            if let Some(body) = body {
                let name = segment_file(s.first, s.last);
                write(&out.join("segments").join(name), &body)?;
            }
        }
        let listed = serde_json::to_vec_pretty(&segments).map_err(|e| e.to_string())?;
        write(&out.join("segments.json"), &listed)?;

        let archived = segments.last().map_or(0, |s| s.last);
        let mut live = Vec::new();
        let mut rows = 0u64;
        let q = Query::table(keys::audit_rows(w)).limit(1000);
        let mut page = app.table.query_text(&q).await.map_err(|e| e.to_string())?;
        'pages: loop {
            for item in &page.items {
                let seq: u64 = item.key.sk.parse().unwrap_or(0);
                if seq <= archived {
                    continue;
                }
                if seq > head {
                    break 'pages;
                }
                // Whole rows as served, without the table's own fields; a row that
                // does not decode is copied as stored, for the verification to name.
                match serde_json::from_str::<AuditRow>(&item.text) {
                    Ok(row) => serde_json::to_writer(&mut live, &row).map_err(|e| e.to_string())?,
                    Err(_) => live.extend(item.text.replace('\n', " ").as_bytes()),
                }
                live.push(b'\n');
                rows += 1;
            }
            match page.last.take() {
                Some(p) => page = app.table.query_text(&q.clone().after(Some(p))).await.map_err(|e| e.to_string())?,
                None => break,
            }
        }
        write(&out.join("live.jsonl"), &live)?;

        let notes = app.checkpoint_notes(w).await.map_err(|e| e.to_string())?;
        for (i, note) in notes.iter().enumerate() {
            let size = Checkpoint::parse(note).map_or(0, |c| c.tree_size);
            write(&out.join("checkpoints").join(format!("{}-{i:04}.note", keys::seq_sk(size))), note.as_bytes())?;
        }
        write(&out.join("public-key.pem"), signer.public_key().pem().as_bytes())?;
        if !signer.retired_keys().is_empty() {
            fs::create_dir_all(out.join("retired-keys"))
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            for k in signer.retired_keys() {
                write(&out.join("retired-keys").join(format!("{}.pem", k.id_hex())), k.pem().as_bytes())?;
            }
        }
        println!(
            "exported workspace {slug} to {}: {} archived segments, {rows} live rows, {} checkpoints",
            out.display(),
            segments.len(),
            notes.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Why a folder cannot be verified at all (exit 2).
struct Unusable(String);

/// The folder's files, read: the rows in order (segments, then live), the notes and
/// the recorded segment list.
struct Folder {
    /// `(source, line)` of each row, in the order walked.
    lines: Vec<(String, String)>,
    notes: Vec<String>,
    segments: Option<Vec<Segment>>,
    files: Vec<String>,
}

fn read_folder(dir: &Path) -> Result<Folder, Unusable> {
    let unusable = |what: &Path, e: std::io::Error| Unusable(format!("cannot read {}: {e}", what.display()));
    if !dir.is_dir() {
        return Err(Unusable(format!("{} is not a folder", dir.display())));
    }
    let live = dir.join("live.jsonl");
    if !live.is_file() {
        return Err(Unusable(format!("{} has no live.jsonl: not an audit export", dir.display())));
    }
    let sorted = |sub: &str, ext: &str| -> Result<Vec<PathBuf>, Unusable> {
        let path = dir.join(sub);
        let Ok(entries) = fs::read_dir(&path) else { return Ok(Vec::new()) };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        files.sort();
        Ok(files)
    };
    let mut lines = Vec::new();
    let mut files = Vec::new();
    for file in sorted("segments", "jsonl")?.into_iter().chain([live]) {
        let text = fs::read_to_string(&file).map_err(|e| unusable(&file, e))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(|l| (name.clone(), l.to_owned())));
        files.push(name);
    }
    let mut notes = Vec::new();
    for file in sorted("checkpoints", "note")? {
        notes.push(fs::read_to_string(&file).map_err(|e| unusable(&file, e))?);
    }
    let segments = match fs::read(dir.join("segments.json")) {
        Ok(b) => Some(
            serde_json::from_slice(&b).map_err(|e| Unusable(format!("segments.json is not a segment list: {e}")))?,
        ),
        Err(_) => None,
    };
    Ok(Folder { lines, notes, segments, files })
}

/// The segments the table recorded whose file is missing or not as recorded.
fn check_segments(dir: &Path, segments: &[Segment]) -> Option<ChainBreak> {
    segments.iter().find_map(|s| {
        let name = segment_file(s.first, s.last);
        s.check(fs::read(dir.join("segments").join(&name)).ok().as_deref(), &name)
    })
}

/// Walks the rows of an export as one chain, with the tree's roots at every
/// checkpoint's size. The workspace is the first row's (or the checkpoints').
fn walk(folder: &Folder, marks: &[u64], progress: &dyn Fn(u64)) -> (String, VerifyReport) {
    let first_ws = folder
        .lines
        .first()
        .and_then(|(_, l)| serde_json::from_str::<Value>(l).ok()?.get("workspace_id")?.as_str().map(str::to_owned));
    let ws = first_ws
        .or_else(|| folder.notes.iter().find_map(|n| Checkpoint::parse(n).ok()).map(|c| c.workspace_id))
        .unwrap_or_default();
    let mut v = ChainVerifier::new(&ws).with_marks(marks);
    for (i, (_, line)) in folder.lines.iter().enumerate() {
        let ok = match serde_json::from_str::<AuditRow>(line) {
            Ok(row) => v.push(&row),
            Err(_) => {
                let value = serde_json::from_str::<Value>(line).ok();
                let id = value.as_ref().and_then(|v| v.get("id")?.as_str().map(str::to_owned));
                let seq = value.as_ref().and_then(|v| v.get("seq")?.as_u64()).unwrap_or(v.rows_checked() + 1);
                v.unreadable(id, seq);
                false
            }
        };
        if i % 10_000 == 9_999 {
            progress(i as u64 + 1);
        }
        if !ok {
            break;
        }
    }
    // No head offline: the last row ends the chain, and the signed sizes say whether
    // rows are missing after it.
    (ws, v.finish_without_head())
}

/// `vigilo audit verify --offline FOLDER [--key PEM]...`.
pub fn verify(dir: &Path, key: &[PathBuf], progress: Progress) -> Result<ExitCode, String> {
    match verify_folder(dir, key, progress) {
        Ok(code) => Ok(code),
        Err(Unusable(why)) => {
            eprintln!("vigilo: cannot verify {}: {why}", dir.display());
            Ok(ExitCode::from(2))
        }
    }
}

fn verify_folder(dir: &Path, key: &[PathBuf], progress: Progress) -> Result<ExitCode, Unusable> {
    let pem_paths: Vec<PathBuf> = if key.is_empty() {
        eprintln!(
            "warning: using the public key inside the folder; verify with --key and a key obtained \
             independently (GET /ws/{{slug}}/audit/key, or from KMS), or a forger's own key would pass"
        );
        let mut retired: Vec<PathBuf> = fs::read_dir(dir.join("retired-keys"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        retired.sort();
        std::iter::once(dir.join("public-key.pem")).chain(retired).collect()
    } else {
        key.to_vec()
    };
    let mut keys = Vec::new();
    for path in &pem_paths {
        let pem = fs::read_to_string(path).map_err(|e| Unusable(format!("cannot read {}: {e}", path.display())))?;
        keys.push(PublicKey::from_pem(&pem).map_err(|e| Unusable(format!("{}: {e}", path.display())))?);
    }
    let folder = read_folder(dir)?;
    let marks: Vec<u64> = folder.notes.iter().filter_map(|n| Checkpoint::parse(n).ok()).map(|c| c.tree_size).collect();
    let total = folder.lines.len() as u64;
    let bar = progress.bar(total, "verifying");
    let (ws, mut report) = walk(&folder, &marks, &|n| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let from_segments = folder.segments.as_deref().and_then(|s| check_segments(dir, s));
    if let Some(b) = from_segments {
        if report.chain_break.as_ref().is_none_or(|c| b.seq <= c.seq) {
            report.ok = false;
            report.chain_break = Some(b);
        }
    }
    let (checked, broken) = check_checkpoints(&ws, &folder.notes, &report, &keys);
    report.checkpoints_checked = checked;
    if let (Some(b), None) = (broken, &report.chain_break) {
        report.ok = false;
        report.chain_break = Some(b);
    }
    if folder.notes.is_empty() && report.chain_break.is_none() {
        eprintln!("warning: the folder holds no signed checkpoint: a cut-off tail or a rewrite would not show");
    }
    Ok(crate::audit::print_report(&report, &format!("{} ({})", dir.display(), folder.files.join(", "))))
}
