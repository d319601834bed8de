//! Chooses which `libstdio_bus.a` the crate links, checks that it is code the bus knows,
//! and rewrites it so that the kernel's system calls reach this crate.
//!
//! 1. `STDIO_BUS_LIB_DIR_<target>=<folder holding libstdio_bus.a>` (the target triple as
//!    it is, or with `_` for `-`), else `STDIO_BUS_LIB_DIR`, wins over everything else.
//! 2. Otherwise the `prebuilt` feature takes the vendor archive that ships inside the
//!    crates.io package `stdiobus-backend-native` (a build-dependency, so that cargo brings
//!    its files; none of its code is built into anything).
//! 3. Otherwise nothing is linked: the library still builds (a `no_std` check needs no
//!    archive), and any attempt to link a program against it fails on one undefined symbol
//!    whose name says what to set, instead of a wall of `stdio_bus_*` symbols.
//!
//! On Linux (ELF) the archive is copied into `OUT_DIR`, rewritten (`build/rewrite.rs`):
//! - only the objects a program can link are kept (`build/linked.rs`);
//! - their calls to the libc functions the bus takes over (`build/names.rs`, the one list
//!   of them) become calls to the prefixed functions `src/interpose` defines, and the
//!   archive's own symbols get a prefix of their own, as `src/sys.rs` links them.
//!
//! Before that, the archive is checked: everything the kept objects call outside themselves
//! must be taken over or known to be harmless (`build/classify.rs`), and the functions
//! whose machine code the bus relies on must be code it was checked against
//! (`build/fingerprint.rs`). An archive that fails is refused, unless
//! `STDIO_BUS_ALLOW_UNVERIFIED=1`, which links it without the bus's guarantees and says so.
//!
//! Mach-O archives are linked as they are (see the README).
//!
//! No network access and no external tool (binutils) are needed, ever.

#[path = "build/classify.rs"]
mod classify;
#[path = "build/fingerprint.rs"]
mod fingerprint;
#[path = "build/linked.rs"]
mod linked;
#[path = "build/member.rs"]
mod member;
#[path = "build/names.rs"]
mod names;
#[path = "build/rewrite.rs"]
mod rewrite;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use names::{KERNEL_PREFIX, KERNEL_PREFIX_VAR, LINKED_NAME, PREFIX, PREFIX_VAR};

const LIB_DIR_VAR: &str = "STDIO_BUS_LIB_DIR";
/// Set to `1`, links an archive that failed its checks, with a warning.
const ALLOW_UNVERIFIED_VAR: &str = "STDIO_BUS_ALLOW_UNVERIFIED";
const ARCHIVE: &str = "libstdio_bus.a";
/// The package, and its version, that carries the vendor's prebuilt archives.
const CARRIER: &str = "stdiobus-backend-native-1.1.1";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    println!("cargo:rerun-if-env-changed=HOME");
    println!("cargo:rerun-if-env-changed={ALLOW_UNVERIFIED_VAR}");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_unlinked)");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_interposed)");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_embedded_api)");
    // Whatever is linked, or nothing: the crate's sources name symbols through these.
    println!("cargo:rustc-env={PREFIX_VAR}={PREFIX}");
    println!("cargo:rustc-env={KERNEL_PREFIX_VAR}={KERNEL_PREFIX}");

    let target = env::var("TARGET").expect("cargo sets TARGET");
    let lib_dir = lib_dir(&target);

    // docs.rs has no archive for every target and needs none to render documentation.
    if env::var_os("DOCS_RS").is_some() {
        return;
    }

    let archive = if let Some((var, dir)) = lib_dir {
        archive_in(&var, dir)
    } else if env::var_os("CARGO_FEATURE_PREBUILT").is_some() {
        prebuilt_archive(&target)
    } else {
        println!(
            "cargo:warning=stdiobus-embed: no kernel archive is linked. Set \
             {LIB_DIR_VAR}=<folder holding {ARCHIVE}>, or enable the `prebuilt` feature \
             (on by default). Programs using the bus will fail to link until then."
        );
        println!("cargo:rustc-cfg=stdio_bus_unlinked");
        return;
    };
    link(&archive);
}

/// The variable naming the archive's folder, and the folder: the first of
/// `STDIO_BUS_LIB_DIR_<target>` (as cargo spells the target, then with `_` for `-`, as
/// `cc` and `pkg-config` read theirs) and `STDIO_BUS_LIB_DIR` that is set. A per-target
/// folder lets one environment serve a cross build, whose build script runs for the host
/// too.
fn lib_dir(target: &str) -> Option<(String, PathBuf)> {
    let vars = [
        format!("{LIB_DIR_VAR}_{target}"),
        format!("{LIB_DIR_VAR}_{}", target.replace('-', "_")),
        LIB_DIR_VAR.to_owned(),
    ];
    for var in &vars {
        println!("cargo:rerun-if-env-changed={var}");
    }
    vars.into_iter()
        .find_map(|var| env::var_os(&var).map(|dir| (var, PathBuf::from(dir))))
}

/// `dir/libstdio_bus.a`, which must exist; `var` named `dir`.
fn archive_in(var: &str, dir: PathBuf) -> PathBuf {
    let archive = dir.join(ARCHIVE);
    if !archive.is_file() {
        fail(&format!(
            "{var} is set to `{}`, but `{}` does not exist. Point {var} at the folder that \
             holds {ARCHIVE}, or unset it.",
            dir.display(),
            archive.display()
        ));
    }
    archive
}

/// The vendor archive for the target inside the carrier package's files.
///
/// Cargo unpacks every package of the build next to the others: beside this crate's own
/// folder when it comes from a registry or `cargo vendor`, or in the registry's source
/// cache when this crate is built from a checkout. musl targets take the archive of the
/// same architecture's linux-gnu build: its objects call only plain POSIX and Linux
/// functions, which musl provides too.
fn prebuilt_archive(target: &str) -> PathBuf {
    let carried = target.replace("-linux-musl", "-linux-gnu");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut roots: Vec<PathBuf> = manifest
        .parent()
        .into_iter()
        .map(Path::to_path_buf)
        .collect();
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    if let Some(sources) = cargo_home.map(|home| home.join("registry").join("src")) {
        // One folder per registry index.
        if let Ok(indexes) = fs::read_dir(&sources) {
            roots.extend(indexes.flatten().map(|entry| entry.path()));
        }
    }
    // `cargo vendor` names the folder without the version unless asked otherwise.
    let unversioned = CARRIER.rsplit_once('-').map_or(CARRIER, |(name, _)| name);
    let relative = Path::new(CARRIER).join("lib").join(&carried).join(ARCHIVE);
    let in_vendor = Path::new(unversioned)
        .join("lib")
        .join(&carried)
        .join(ARCHIVE);
    match roots
        .iter()
        .flat_map(|root| [root.join(&relative), root.join(&in_vendor)])
        .find(|path| path.is_file())
    {
        Some(archive) => archive,
        None => fail(&format!(
            "the `prebuilt` feature found no `{}` for target {target} in the unpacked \
             package {CARRIER} (looked beside this crate and in the cargo registry's \
             sources). Set {LIB_DIR_VAR}=<folder holding {ARCHIVE}> instead.",
            relative.display()
        )),
    }
}

/// Writes the archive to link into `OUT_DIR`, rewritten on Linux, and links it.
fn link(archive: &Path) {
    println!("cargo:rerun-if-changed={}", archive.display());
    let data = fs::read(archive)
        .unwrap_or_else(|error| fail(&format!("cannot read `{}`: {error}", archive.display())));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let linked = out_dir.join(format!("lib{LINKED_NAME}.a"));
    // The kernel with the embedded-worker API (2.2.1) has other defaults, among them a
    // longer worker line (`max_input_buffer`): the bus needs to know which it links.
    let embedded_api = b"stdio_bus_register_embedded_worker";
    if data
        .windows(embedded_api.len())
        .any(|window| window == embedded_api)
    {
        println!("cargo:rustc-cfg=stdio_bus_embedded_api");
    }
    let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let written = if linux {
        let rewritten = checked_rewrite(archive, &data)
            .unwrap_or_else(|error| fail(&format!("`{}`: {error}", archive.display())));
        println!("cargo:rustc-cfg=stdio_bus_interposed");
        fs::write(&linked, rewritten)
    } else {
        fs::write(&linked, &data)
    };
    if let Err(error) = written {
        fail(&format!("cannot write `{}`: {error}", linked.display()));
    }
    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rustc-link-lib=static={LINKED_NAME}");
    // The archive calls into libpthread, which glibc before 2.34 keeps apart from libc (musl
    // has it in libc, and its targets ship no libpthread), and into libc itself, which a
    // `no_std` program does not otherwise link.
    if linux {
        if env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu") {
            println!("cargo:rustc-link-lib=pthread");
        }
        println!("cargo:rustc-link-lib=c");
    }
}

/// The rewritten archive `data` (read from `archive`), once it passed its checks or
/// [`ALLOW_UNVERIFIED_VAR`] let it through.
fn checked_rewrite(archive: &Path, data: &[u8]) -> Result<Vec<u8>, String> {
    let members = member::read_all(data)?;
    let linked = linked::linked(&members)?;
    let mut problems = classify::check(&members, &linked);
    problems.extend(fingerprint::check(&members));
    if !problems.is_empty() {
        let list: String = problems
            .iter()
            .map(|problem| format!("\n  - {problem}"))
            .collect();
        if env::var(ALLOW_UNVERIFIED_VAR).as_deref() != Ok("1") {
            fail(&format!(
                "refusing to link `{}`, which is not code the bus was checked against:{list}\n\
                 The bus's guarantees (no foreign descriptor closed, no stolen children, no \
                 lost or misattributed line, a safe `destroy`) rest on that code; with other \
                 code it can corrupt memory silently. Link the archive of crates.io \
                 `stdiobus-backend-native` 1.1.1 (the `prebuilt` feature) or of PyPI \
                 `stdiobus` 2.2.1, or set {ALLOW_UNVERIFIED_VAR}=1 to link this one without \
                 those guarantees.",
                archive.display()
            ));
        }
        println!(
            "cargo:warning=stdiobus-embed: {ALLOW_UNVERIFIED_VAR}=1: LINKING `{}` WITHOUT THE \
             BUS'S GUARANTEES. It is not code the bus was checked against, and the bus may \
             corrupt memory silently with it:",
            archive.display()
        );
        for problem in &problems {
            println!("cargo:warning=stdiobus-embed: UNVERIFIED: {problem}");
        }
    }
    rewrite::rewrite(members, &linked)
}

fn fail(message: &str) -> ! {
    eprintln!("error: stdiobus-embed: {message}");
    std::process::exit(1);
}
