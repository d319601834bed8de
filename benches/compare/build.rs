//! The bench counts every C and Rust allocation of the process: its binaries are linked
//! with `--wrap` for the malloc family (see `alloc_count.rs`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!(
            "cargo:rustc-link-arg-benches=-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,\
             --wrap=strdup,--wrap=strndup,--wrap=posix_memalign,--wrap=aligned_alloc"
        );
    }
}
