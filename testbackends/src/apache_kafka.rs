//! Starts and stops an Apache Kafka test backend: a single KRaft node (broker and controller)
//! from the jars `scripts/backends/apache-kafka.sh` installs into `$EBB_APACHE_KAFKA_DIR`
//! (default `/var/tmp/ebb-apache-kafka`), with storage formatted in a fresh temporary directory.
//! It listens on free 127.0.0.1 ports: a SASL_PLAINTEXT listener accepting OAUTHBEARER with
//! Kafka's default *unsecured* validator (any unsigned JWT, `alg: none`, with `sub` and a
//! future `exp`), and a PLAINTEXT listener for fixtures (the tansu [`Admin`] client works on it).
//! Ready once the plain listener answers ApiVersions; killed, and its directory removed, on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use crate::tansu::Admin;
use crate::tansu::free_port;

const INSTALL_HINT: &str = "run `bash scripts/backends/apache-kafka.sh`";
/// The Kafka version the install script fetches.
pub const VERSION: &str = "3.9.1";
/// A fixed KRaft cluster id (16 bytes, base64url).
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

/// A running Apache Kafka node; killed on drop.
#[derive(Debug)]
pub struct ApacheKafka {
    child: Child,
    dir: PathBuf,
    sasl_port: u16,
    plain_port: u16,
}

/// The install directory: `$EBB_APACHE_KAFKA_DIR` or `/var/tmp/ebb-apache-kafka`.
pub fn install_dir() -> PathBuf {
    std::env::var_os("EBB_APACHE_KAFKA_DIR")
        .map_or_else(|| PathBuf::from("/var/tmp/ebb-apache-kafka"), PathBuf::from)
}

fn classpath() -> Result<String, String> {
    let lib = install_dir().join("lib");
    if !lib.join(format!(".installed-{VERSION}")).is_file() {
        return Err(format!("Apache Kafka {VERSION} is not installed in {}; {INSTALL_HINT}", lib.display()));
    }
    Ok(format!("{}/*", lib.display()))
}

fn java(cp: &str, log: &Path) -> Result<Command, String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
    let mut cmd = Command::new("java");
    // A small heap and the client compiler: the node starts in a few seconds on a busy machine.
    cmd.args(["-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"])
        .arg("-cp")
        .arg(cp)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    Ok(cmd)
}

impl ApacheKafka {
    /// Formats storage, starts the node and waits until it serves requests.
    pub fn start() -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let cp = classpath()?;
        let dir = std::env::temp_dir().join(format!(
            "ebb-apache-kafka-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data"))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let (sasl_port, plain_port, controller_port) = (free_port()?, free_port()?, free_port()?);
        let props = dir.join("server.properties");
        let config = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
             listeners=SASL_PLAINTEXT://127.0.0.1:{sasl_port},PLAINTEXT://127.0.0.1:{plain_port},CONTROLLER://127.0.0.1:{controller_port}\n\
             advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{sasl_port},PLAINTEXT://127.0.0.1:{plain_port}\n\
             listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             sasl.enabled.mechanisms=OAUTHBEARER\n\
             listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;\n\
             log.dirs={data}\n\
             num.partitions=1\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\n",
            data = dir.join("data").display()
        );
        std::fs::write(&props, config).map_err(|e| format!("cannot write {}: {e}", props.display()))?;
        let log = dir.join("broker.log");
        let status = java(&cp, &log)?
            .args(["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c"])
            .arg(&props)
            .status()
            .map_err(|e| format!("cannot run java: {e}; {INSTALL_HINT}"))?;
        if !status.success() {
            let tail = tail(&log);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("formatting KRaft storage failed ({status}): {tail}"));
        }
        let child = java(&cp, &log)?
            .arg("kafka.Kafka")
            .arg(&props)
            .spawn()
            .map_err(|e| format!("cannot start java: {e}; {INSTALL_HINT}"))?;
        let mut k = Self { child, dir, sasl_port, plain_port };
        k.wait_ready(Duration::from_secs(90))?;
        Ok(k)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Apache Kafka exited with {status} before serving: {}", self.log_tail()));
            }
            if api_versions(self.plain_port) && api_versions_port_open(self.sasl_port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("Apache Kafka did not serve within {limit:?}: {}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:<port>` of the SASL_PLAINTEXT OAUTHBEARER listener.
    pub fn sasl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_port)
    }

    /// `127.0.0.1:<port>` of the PLAINTEXT listener (fixtures).
    pub fn plain_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.plain_port)
    }

    /// Last lines of the node's output, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.dir.join("broker.log"))
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn api_versions_port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// Whether the listener on `port` answers an ApiVersions v0 request without an error.
fn api_versions(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    // size, api key 18, version 0, correlation id 7, client id null.
    let req = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff];
    if s.write_all(&req).is_err() {
        return false;
    }
    let mut head = [0u8; 10];
    // size (4), correlation id (4), error code (2).
    s.read_exact(&mut head).is_ok() && head[4..8] == [0, 0, 0, 7] && head[8..10] == [0, 0]
}
