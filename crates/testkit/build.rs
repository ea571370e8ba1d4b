//! Fingerprints everything that shapes the test template database — the
//! PostgreSQL migrations, the role and grant SQL `migrate` runs, and the
//! template code here — with SHA-256 (stable across Rust releases), so the
//! template is rebuilt whenever any of it changes.

use std::path::{Path, PathBuf};
use std::{env, fs, io};

use sha2::{Digest, Sha256};

fn visit(root: &Path, path: &Path, hasher: &mut Sha256) -> io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            visit(root, &entry, hasher)?;
        }
    } else {
        let name = path.strip_prefix(root).unwrap_or(path).to_string_lossy();
        let content = fs::read(path)?;
        // Length-prefixed, so that no two file sets hash alike by accident.
        for part in [name.as_bytes(), &content] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?);
    let root = crate_dir.join("../..");
    let inputs = [
        root.join("migrations/postgres"),
        root.join("crates/persistence/src/postgres/migrate.rs"),
        crate_dir.join("src/db.rs"),
    ];
    let mut hasher = Sha256::new();
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
        visit(&root, input, &mut hasher)?;
    }
    let digest = hasher.finalize();
    let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=FLOWEXEC_TEMPLATE_HASH={short}");
    Ok(())
}
