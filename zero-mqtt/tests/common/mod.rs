//! Helpers shared by the integration tests: the peers' command-line tools and a mosquitto
//! broker on a spare port.
#![allow(dead_code)] // each test binary uses its own part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use zero_core::rustls::ClientConfig as TlsConfig;
use zero_mqtt::client::driver::Target;

/// `name` as a command with no stdin; fails the test (pointing at scripts/test.sh) if the
/// tool is not installed.
pub fn tool(name: &str) -> Command {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap();
    assert!(found.status.success(), "{name} is missing: run scripts/test.sh (it installs mosquitto-clients)");
    let mut cmd = Command::new(name);
    cmd.stdin(Stdio::null());
    cmd
}

/// mosquitto on a spare loopback port, killed on drop.
pub struct Mosquitto {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Over TLS: the client configuration that trusts its certificate (for `localhost`).
    pub tls: Option<Arc<TlsConfig>>,
    /// Over TLS: the PEM file of the CA that signed its certificate.
    pub ca_file: Option<std::path::PathBuf>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Mosquitto {
    /// Starts mosquitto on a spare loopback port, anonymous clients allowed.
    pub fn start() -> Mosquitto {
        Mosquitto::launch(false)
    }

    /// [`Mosquitto::start`] with a TLS listener, its certificate from a throwaway CA.
    pub fn start_tls() -> Mosquitto {
        Mosquitto::launch(true)
    }

    fn launch(tls: bool) -> Mosquitto {
        tool("mosquitto");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("zero-mqtt-client-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        let mut text = format!("listener {port} 127.0.0.1\nallow_anonymous true\n");
        let trust = tls.then(|| {
            let (ca, cert, key) = throwaway_pki();
            std::fs::write(dir.join("cert.pem"), cert).unwrap();
            std::fs::write(dir.join("key.pem"), key).unwrap();
            std::fs::write(dir.join("ca.pem"), &ca).unwrap();
            text += &format!("certfile {0}/cert.pem\nkeyfile {0}/key.pem\n", dir.display());
            zero_core::tls::ClientTls::with_ca_pem(ca.as_bytes()).unwrap().build().unwrap()
        });
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let ca_file = tls.then(|| dir.join("ca.pem"));
        Mosquitto { child, addr, tls: trust, ca_file, _dir: TempDir(dir) }
    }

    /// Where a zero client finds it (over TLS if it was started so).
    pub fn target(&self) -> Target {
        Target { addr: self.addr, tls: self.tls.clone().map(|c| ("localhost".to_string(), c)), socks5: None }
    }
}

/// A CA certificate, and a `localhost` server certificate and key it signed, as PEM.
fn throwaway_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert =
        CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
