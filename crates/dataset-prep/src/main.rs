use clap::Parser;
use dataset_prep::{run, Config};

fn main() {
    let config = Config::parse();
    if let Err(err) = run(&config) {
        // One line with the whole cause chain: the file and what is wrong with it.
        eprintln!("dataset-prep: error: {err:#}");
        std::process::exit(1);
    }
}
