//! Chooses which `libstdio_bus.a` the crate links, and rewrites it so that the kernel's
//! system calls reach this crate.
//!
//! 1. `STDIO_BUS_LIB_DIR=<folder holding libstdio_bus.a>` wins over everything else.
//! 2. Otherwise the `prebuilt` feature takes the vendor archive that ships inside the
//!    crates.io package `stdiobus-backend-native` (a build-dependency, so that cargo brings
//!    its files; none of its code is built into anything).
//! 3. Otherwise nothing is linked: the library still builds (a `no_std` check needs no
//!    archive), and any attempt to link a program against it fails on one undefined symbol
//!    whose name says what to set, instead of a wall of `stdio_bus_*` symbols.
//!
//! On Linux (ELF) the archive is copied into `OUT_DIR` with two kinds of renaming:
//! - the vendor objects' undefined references to the libc functions in [`INTERPOSED`]
//!   become `stdiobus_embed_<name>`, which `src/interpose` defines; everyone else's calls
//!   still reach libc. Every one of those names must be found, or the build fails: an
//!   archive that calls the system some other way would not be guarded;
//! - every symbol the archive defines (`stdio_bus_create`, ...) becomes
//!   `stdiobus_embed_kernel_<name>`, references included, as `src/sys.rs` links them, so
//!   that another copy of the kernel in the same program (the tokio binding's, say) can
//!   neither take the calls meant for this one nor clash with it.
//!
//! Mach-O archives are linked as they are (see the README).
//!
//! No network access and no external tool (binutils) are needed, ever.

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use object::read::archive::ArchiveFile;

const LIB_DIR_VAR: &str = "STDIO_BUS_LIB_DIR";
const ARCHIVE: &str = "libstdio_bus.a";
/// The archive is linked under a name of its own so that no other `-L` folder holding a
/// `libstdio_bus.a` (the prebuilt carrier's, say) can be picked by mistake.
const LINKED_NAME: &str = "stdiobus_embed_kernel";
/// The package, and its version, that carries the vendor's prebuilt archives.
const CARRIER: &str = "stdiobus-backend-native-1.1.1";
/// What the renamed libc references are prefixed with; `src/interpose` defines the targets.
const PREFIX: &str = "stdiobus_embed_";
/// What the archive's own symbols are prefixed with; `src/sys.rs` links to those names.
const KERNEL_PREFIX: &str = "stdiobus_embed_kernel_";

/// libc functions whose calls from every vendor object are taken over.
const INTERPOSED: [&str; 11] = [
    "close",
    "pipe",
    "socket",
    "accept",
    "eventfd",
    "epoll_create1",
    "epoll_wait",
    "fork",
    "execvp",
    "waitpid",
    "kill",
];
/// Calls taken over in one object only: `bus_core.o`'s `write` is `ingest`'s (the bus picks
/// the worker it goes to), `transport.o`'s `read` tells which worker a line comes from, and
/// `destroy` frees the router before the transport teardown that still uses it.
const INTERPOSED_IN_OBJECT: [(&str, &str); 3] = [
    ("bus_core.o", "write"),
    ("transport.o", "read"),
    ("bus_core.o", "stdio_bus_router_destroy"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={LIB_DIR_VAR}");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    println!("cargo:rerun-if-env-changed=HOME");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_unlinked)");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_interposed)");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_embedded_api)");

    // docs.rs has no archive for every target and needs none to render documentation.
    if env::var_os("DOCS_RS").is_some() {
        return;
    }

    let archive = if let Some(dir) = env::var_os(LIB_DIR_VAR) {
        archive_in(PathBuf::from(dir))
    } else if env::var_os("CARGO_FEATURE_PREBUILT").is_some() {
        prebuilt_archive()
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

/// `dir/libstdio_bus.a`, which must exist.
fn archive_in(dir: PathBuf) -> PathBuf {
    let archive = dir.join(ARCHIVE);
    if !archive.is_file() {
        fail(&format!(
            "{LIB_DIR_VAR} is set to `{}`, but `{}` does not exist. Point {LIB_DIR_VAR} at \
             the folder that holds {ARCHIVE}, or unset it to use the `prebuilt` feature.",
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
fn prebuilt_archive() -> PathBuf {
    let target = env::var("TARGET").expect("cargo sets TARGET");
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
        let rewritten = rewrite(&data)
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

/// The archive with its symbols renamed in every member (see the top of this file), and a
/// fresh symbol index.
fn rewrite(data: &[u8]) -> Result<Vec<u8>, String> {
    let archive = ArchiveFile::parse(data).map_err(|error| format!("not an archive: {error}"))?;
    let mut objects = Vec::new();
    for member in archive.members() {
        let member = member.map_err(|error| format!("unreadable member: {error}"))?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        let bytes = member
            .data(data)
            .map_err(|error| format!("member `{name}`: {error}"))?;
        let object = object::build::elf::Builder::read(bytes)
            .map_err(|error| format!("member `{name}`: {error}"))?;
        objects.push((name, object));
    }
    let own: BTreeSet<Vec<u8>> = objects
        .iter()
        .flat_map(|(_, object)| object.symbols.iter())
        .filter(|symbol| is_defined(symbol) && is_global(symbol))
        .map(|symbol| symbol.name.to_vec())
        .collect();
    let mut found = BTreeSet::new();
    let mut members = Vec::new();
    for (name, mut object) in objects {
        rename(&name, &mut object, &own, &mut found);
        let mut bytes = Vec::new();
        object
            .write(&mut bytes)
            .map_err(|error| format!("member `{name}`: {error}"))?;
        members.push((name, bytes));
    }
    let wanted = INTERPOSED
        .iter()
        .chain(INTERPOSED_IN_OBJECT.iter().map(|(_, symbol)| symbol));
    let missing: Vec<&str> = wanted
        .filter(|symbol| !found.contains(**symbol))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "no vendor object calls {}, which this crate takes over: the archive is not \
             one it knows, and its calls to the system might go unguarded; refusing to \
             link it",
            missing.join(", ")
        ));
    }
    let members: Vec<_> = members
        .into_iter()
        .map(|(name, object)| {
            ar_archive_writer::NewArchiveMember::new(
                object,
                &ar_archive_writer::DEFAULT_OBJECT_READER,
                name,
            )
        })
        .collect();
    let mut out = std::io::Cursor::new(Vec::new());
    ar_archive_writer::write_archive_to_stream(
        &mut out,
        &members,
        ar_archive_writer::ArchiveKind::Gnu,
        false,
        None,
    )
    .map_err(|error| format!("cannot write the rewritten archive: {error}"))?;
    Ok(out.into_inner())
}

fn is_defined(symbol: &object::build::elf::Symbol<'_>) -> bool {
    symbol.section.is_some() || symbol.st_shndx != object::elf::SHN_UNDEF
}

fn is_global(symbol: &object::build::elf::Symbol<'_>) -> bool {
    symbol.st_info >> 4 != object::elf::STB_LOCAL
}

/// Renames one member's symbols: its calls to interposed functions to this crate's, and
/// every symbol of the archive's own (`own`) to its prefixed name. The interposed names
/// it calls are added to `found`.
fn rename(
    member: &str,
    object: &mut object::build::elf::Builder<'_>,
    own: &BTreeSet<Vec<u8>>,
    found: &mut BTreeSet<String>,
) {
    for symbol in object.symbols.iter_mut() {
        let Ok(name) = std::str::from_utf8(&symbol.name).map(str::to_owned) else {
            continue;
        };
        let interposed = INTERPOSED.contains(&name.as_str())
            || INTERPOSED_IN_OBJECT
                .iter()
                .any(|&(object, symbol)| object == member && symbol == name);
        let renamed = if !is_defined(symbol) && interposed {
            found.insert(name.clone());
            format!("{PREFIX}{name}")
        } else if (is_global(symbol) || !is_defined(symbol)) && own.contains(name.as_bytes()) {
            format!("{KERNEL_PREFIX}{name}")
        } else {
            continue;
        };
        symbol.name = renamed.into_bytes().into();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: stdiobus-embed: {message}");
    std::process::exit(1);
}
