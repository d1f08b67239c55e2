//! A real `redis-server` (Debian's package, installed by scripts/test) on a free loopback
//! port, with no persistence, stopped when dropped; plain, or TLS-only with a password.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    tls: Option<Tls>,
}

/// A TLS-only server's files and password.
struct Tls {
    dir: tempfile::TempDir,
    password: String,
}

impl Redis {
    /// Starts redis-server on a free port and waits until it answers.
    pub fn start() -> Redis {
        let mut r = Redis::start_with(None);
        r.start_again();
        r
    }

    /// Starts redis-server accepting only TLS (with `cert_pem` and `key_pem`, issued by
    /// `ca_pem`) and only clients that give `password`.
    pub fn start_tls(ca_pem: &str, cert_pem: &str, key_pem: &str, password: &str) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let mut r = Redis::start_with(Some(Tls {
            dir,
            password: password.to_owned(),
        }));
        r.start_again();
        r
    }

    fn start_with(tls: Option<Tls>) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis {
            port,
            child: None,
            tls,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, empty: nothing is saved.
    pub fn start_again(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(tls) => {
                let file = |f: &str| tls.dir.path().join(f).display().to_string();
                command
                    .args(["--port", "0", "--tls-port", &port])
                    .args(["--tls-cert-file", &file("cert.pem")])
                    .args(["--tls-key-file", &file("key.pem")])
                    .args(["--tls-ca-cert-file", &file("ca.pem")])
                    .args(["--tls-auth-clients", "no"])
                    .args(["--requirepass", &tls.password])
            }
        };
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server could not start ({e}): run scripts/test, which installs it")
            });
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < end,
                "redis-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
