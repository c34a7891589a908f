//! scripts/fetch-fashion-mnist.sh finds the files in each place it looks (the user's
//! folder, the installed package's folder, a .deb), copies only what is missing,
//! and then checks every file's sum; with none of them it says what to bring.
//! The files here are small fakes, so the sum check is seen to fail, naming them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-fashion-mnist.sh")
}

/// Writes the four NAME.gz fakes into `dir`, each with its own content.
fn fakes(dir: &Path, tag: &str) {
    fs::create_dir_all(dir).unwrap();
    for name in NAMES {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, format!("{tag} {name}").as_bytes()).unwrap();
        fs::write(dir.join(format!("{name}.gz")), gz.finish().unwrap()).unwrap();
    }
}

fn run(dest: &Path, env: &[(&str, &Path)], path: Option<&Path>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).arg(dest);
    // No installed package unless the test gives one.
    cmd.env("FASHION_MNIST_SYSTEM_DIR", dest.join("no-such-folder"));
    cmd.env_remove("FASHION_MNIST_DEB");
    cmd.env_remove("FASHION_MNIST_SKIP_SHA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The copied files hold what the source held.
fn assert_copied(from: &Path, to: &Path) {
    for name in NAMES {
        let f = format!("{name}.gz");
        assert_eq!(
            fs::read(from.join(&f)).unwrap(),
            fs::read(to.join(&f)).unwrap(),
            "{f}"
        );
    }
}

fn assert_sums_refused(out: &Output, dest: &Path) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for name in NAMES {
        assert!(
            err.contains(&format!("{}/{name}.gz: SHA-256", dest.display())),
            "{err}"
        );
    }
    assert!(
        err.contains("not the expected Fashion-MNIST files"),
        "{err}"
    );
}

#[test]
fn the_users_files_are_used_as_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("fm");
    fakes(&dest, "user");
    let out = run(&dest, &[], None);
    assert!(!stderr(&out).contains("missing in"), "{}", stderr(&out));
    assert_sums_refused(&out, &dest);
    let skip = run(&dest, &[("FASHION_MNIST_SKIP_SHA", Path::new("1"))], None);
    assert!(skip.status.success(), "{}", stderr(&skip));
}

#[test]
fn missing_files_come_from_the_installed_package() {
    let tmp = tempfile::tempdir().unwrap();
    let (pkg, dest) = (tmp.path().join("pkg"), tmp.path().join("fm"));
    fakes(&pkg, "package");
    let out = run(&dest, &[("FASHION_MNIST_SYSTEM_DIR", &pkg)], None);
    assert!(
        stderr(&out).contains("installed package folder"),
        "{}",
        stderr(&out)
    );
    assert_copied(&pkg, &dest);
    assert_sums_refused(&out, &dest);
}

#[test]
fn missing_files_come_from_a_deb_unpacked_not_installed() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("skipped: dpkg-deb is not installed here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    let files = tree.join("usr/share/datasets/fashion-mnist");
    fakes(&files, "deb");
    fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    fs::write(
        tree.join("DEBIAN/control"),
        "Package: dataset-fashion-mnist\nVersion: 0.0-1\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: test\n",
    )
    .unwrap();
    let deb = tmp.path().join("fake.deb");
    let built = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&tree)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    let dest = tmp.path().join("fm");
    let out = run(&dest, &[("FASHION_MNIST_DEB", &deb)], None);
    assert!(
        stderr(&out).contains("taking them from"),
        "{}",
        stderr(&out)
    );
    assert_copied(&files, &dest);
    assert_sums_refused(&out, &dest);

    fs::write(&deb, b"not a deb").unwrap();
    let again = tmp.path().join("fm2");
    let out = run(&again, &[("FASHION_MNIST_DEB", &deb)], None);
    assert!(stderr(&out).contains("cannot unpack"), "{}", stderr(&out));
    assert!(
        fs::read_dir(&again).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn with_nowhere_to_look_it_says_what_to_bring() {
    let tmp = tempfile::tempdir().unwrap();
    // A PATH with the tools the script needs but no apt-get.
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in [
        "bash", "mkdir", "sed", "dirname", "basename", "cat", "mktemp", "rm",
    ] {
        let found = Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let target = String::from_utf8_lossy(&found.stdout).trim().to_string();
        std::os::unix::fs::symlink(target, bin.join(tool)).unwrap();
    }
    let dest = tmp.path().join("fm");
    let out = run(&dest, &[], Some(&bin));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("apt-get is not installed")
            && err.contains(&format!("in {} yourself", dest.display())),
        "{err}"
    );
}
