//! The report calls no torch, but it links nullclass, whose tensor code brings
//! libtorch in as a needed library; without torch-sys as a direct dependency no
//! DEP_TCH_LIBTORCH_LIB reaches this script, so the rpath comes from LIBTORCH,
//! which scripts/with-torch.sh sets for every build.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(root) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{root}/lib");
    }
}
