//! Runs the upstream control plane the tests use until interrupted, for poking at it by hand:
//! `cargo run -p ebb-testbackends --example upstream`, then `export KUBECONFIG=<printed path>`.

fn main() {
    let up = match ebb_testbackends::kubernetes::Upstream::start(&Default::default()) {
        Ok(up) => up,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("KUBECONFIG={}", up.kubeconfig_path().display());
    println!("logs in {}", up.dir().display());
    loop {
        std::thread::park();
    }
}
