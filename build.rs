//! Chooses which `libstdio_bus.a` the crate links.
//!
//! 1. `STDIO_BUS_LIB_DIR=<folder holding libstdio_bus.a>` wins over everything else.
//! 2. Otherwise the `prebuilt` feature links the vendor archive that ships inside the
//!    crates.io package `stdiobus-backend-native` (its own build script does the linking;
//!    `lib.rs` only pulls the crate into the link).
//! 3. Otherwise nothing is linked: the library still builds (a `no_std` check needs no
//!    archive), and any attempt to link a program against it fails on one undefined symbol
//!    whose name says what to set, instead of a wall of `stdio_bus_*` symbols.
//!
//! No network access happens here, ever.

use std::env;
use std::fs;
use std::path::PathBuf;

const LIB_DIR_VAR: &str = "STDIO_BUS_LIB_DIR";
const ARCHIVE: &str = "libstdio_bus.a";
/// The archive is linked under a name of its own so that no other `-L` folder holding a
/// `libstdio_bus.a` (the prebuilt carrier's, say) can be picked by mistake.
const LINKED_NAME: &str = "stdiobus_embed_kernel";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={LIB_DIR_VAR}");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_lib_dir)");
    println!("cargo::rustc-check-cfg=cfg(stdio_bus_unlinked)");
    // benches/compare.rs counts every C and Rust allocation of the process at link time.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!(
            "cargo:rustc-link-arg-benches=-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,\
             --wrap=strdup,--wrap=strndup,--wrap=posix_memalign,--wrap=aligned_alloc"
        );
    }

    // docs.rs has no archive for every target and needs none to render documentation.
    if env::var_os("DOCS_RS").is_some() {
        return;
    }

    if let Some(dir) = env::var_os(LIB_DIR_VAR) {
        link_from_dir(PathBuf::from(dir));
    } else if env::var_os("CARGO_FEATURE_PREBUILT").is_none() {
        println!(
            "cargo:warning=stdiobus-embed: no kernel archive is linked. Set \
             {LIB_DIR_VAR}=<folder holding {ARCHIVE}>, or enable the `prebuilt` feature \
             (on by default). Programs using the bus will fail to link until then."
        );
        println!("cargo:rustc-cfg=stdio_bus_unlinked");
    }
}

fn link_from_dir(dir: PathBuf) {
    let archive = dir.join(ARCHIVE);
    println!("cargo:rerun-if-changed={}", archive.display());
    if !archive.is_file() {
        fail(&format!(
            "{LIB_DIR_VAR} is set to `{}`, but `{}` does not exist. Point {LIB_DIR_VAR} at \
             the folder that holds {ARCHIVE}, or unset it to use the `prebuilt` feature.",
            dir.display(),
            archive.display()
        ));
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let linked = out_dir.join(format!("lib{LINKED_NAME}.a"));
    if let Err(error) = fs::copy(&archive, &linked) {
        fail(&format!(
            "cannot copy `{}` to `{}`: {error}",
            archive.display(),
            linked.display()
        ));
    }
    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rustc-link-lib=static={LINKED_NAME}");
    println!("cargo:rustc-cfg=stdio_bus_lib_dir");
    // The archive calls into libpthread, which glibc before 2.34 keeps apart from libc.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-lib=pthread");
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: stdiobus-embed: {message}");
    std::process::exit(1);
}
