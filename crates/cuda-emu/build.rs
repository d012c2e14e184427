//! The library answers to the real driver's soname, so that a binary linked against it records
//! `libcuda.so.1` and loads whichever library of that name the loader finds: the real driver on
//! a machine with an NVIDIA GPU, this one where `LD_LIBRARY_PATH` points at it.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcuda.so.1");
}
