//! Compiles the eBPF program `ebpf/relay.bpf.c` with clang and libbpf's headers (Debian:
//! `clang libbpf-dev`). Without them the crate still builds: the program is left out,
//! `FastPath::load` then reports the fast path unavailable, and cargo prints a warning.
//! `TURN_OFFLOAD_CLANG` names another compiler (e.g. `clang-19`).

use std::env;
use std::path::Path;
use std::process::Command;

const SOURCE: &str = "ebpf/relay.bpf.c";

enum Outcome {
    Built,
    /// The toolchain is missing: build without the program.
    Skipped(String),
}

fn main() {
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-env-changed=TURN_OFFLOAD_CLANG");
    println!("cargo::rustc-check-cfg=cfg(turn_offload_program)");
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    match compile(&Path::new(&out_dir).join("relay.bpf.o")) {
        Outcome::Built => println!("cargo::rustc-cfg=turn_offload_program"),
        Outcome::Skipped(reason) => println!(
            "cargo::warning=turn-offload is built without its eBPF program ({reason}); \
             the kernel fast path will report itself unavailable"
        ),
    }
}

fn compile(object: &Path) -> Outcome {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" {
        return Outcome::Skipped("the target is not Linux".into());
    }
    let clang = env::var("TURN_OFFLOAD_CLANG").unwrap_or_else(|_| "clang".into());
    let bpf_target = if var("CARGO_CFG_TARGET_ENDIAN") == "big" {
        "bpfeb"
    } else {
        "bpfel"
    };
    // Debian keeps <asm/types.h> under the multiarch triple, which -target bpf does not search.
    let arch = var("CARGO_CFG_TARGET_ARCH");
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        other => other,
    };
    let result = Command::new(&clang)
        .args(["-O2", "-g", "-target", bpf_target, "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg("-c")
        .arg(SOURCE)
        .arg("-o")
        .arg(object)
        .output();
    let output = match result {
        Ok(output) => output,
        Err(e) => return Outcome::Skipped(format!("{clang} could not be run: {e}")),
    };
    if output.status.success() {
        return Outcome::Built;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A missing header means a missing package (libbpf-dev, linux-libc-dev), not a bug.
    if stderr.contains("file not found") {
        let first = stderr
            .lines()
            .find(|l| l.contains("file not found"))
            .unwrap_or("");
        return Outcome::Skipped(format!("headers missing: {}", first.trim()));
    }
    panic!("{clang} failed to compile {SOURCE}:\n{stderr}");
}
