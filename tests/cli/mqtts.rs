//! `mqtts://` end to end: a mosquitto of the test's own with a TLS listener, its certificate from
//! a CA the test generates with openssl, and username/password login. `vane serve` subscribes to
//! a sensor topic over TLS (the `mqtt` source, its password from a secret, `ca-file`) and a
//! workflow publishes a command back over TLS (the `publish` step).

use crate::alertmanager::{Process, wait_for};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 it signed.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=vane test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    );
}

#[test]
fn a_reading_over_mqtts_sends_a_command_back_over_mqtts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    certificates(&tls);
    let status = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(tls.join("passwords"))
        .args(["vane", "s3cret-pw"])
        .status()
        .expect("mosquitto_passwd runs");
    assert!(status.success());
    // mosquitto, started as root, reads these as its own user.
    for entry in std::fs::read_dir(&tls).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = crate::support::free_port();
    std::fs::write(
        tls.join("mosquitto.conf"),
        format!(
            "listener {port} 127.0.0.1\ncafile {t}/ca.crt\ncertfile {t}/server.crt\nkeyfile \
             {t}/server.key\nallow_anonymous false\npassword_file {t}/passwords\n",
            t = tls.display()
        ),
    )
    .unwrap();
    let broker = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(tls.join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto runs");
    let _broker = Process(broker);
    wait_for("the TLS listener", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let ca = tls.join("ca.crt");
    let client = |program: &str| {
        let mut command = Command::new(program);
        command
            .arg("--cafile")
            .arg(&ca)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-u", "vane", "-P", "s3cret-pw", "-q", "1"]);
        command
    };
    let mut subscriber = client("mosquitto_sub")
        .args(["-t", "devices/+/commands", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub runs");
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let received = Arc::clone(&received);
        let stdout = subscriber.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                received.lock().unwrap().push(line);
            }
        });
    }
    let _subscriber = Process(subscriber);

    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("vane.yaml"),
        format!(
            "version: 1\nsecrets:\n  MQTT_PASSWORD: {{ env: MQTT_PASSWORD }}\nsources:\n  - name: sensors\n    \
             mqtt:\n      url: mqtts://127.0.0.1:{port}\n      topics: [\"sensors/+/temperature\"]\n      \
             username: vane\n      password: {{ env: MQTT_PASSWORD }}\n      ca-file: tls/ca.crt\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("workflows/command.yaml"),
        format!(
            "version: 1\nname: command\non: {{ mqtt.message: {{}} }}\nsecrets: [MQTT_PASSWORD]\nsteps:\n  \
             - publish:\n      mqtt:\n        url: mqtts://127.0.0.1:{port}\n        \
             topic: \"devices/{{{{ (event.subject | split('/') | list)[1] }}}}/commands\"\n        \
             username: vane\n        password: \"{{{{ secrets.MQTT_PASSWORD }}}}\"\n        \
             ca-file: {}\n        payload: fan-on\n",
            ca.display()
        ),
    )
    .unwrap();
    let (serve, _url) =
        crate::support::spawn_serve(dir.path(), &[], &[("MQTT_PASSWORD", "s3cret-pw")]);
    let _serve = Process(serve);
    // The source's subscription takes a moment: publish until a command comes back.
    wait_for("a command over TLS", Duration::from_secs(30), || {
        let _ = client("mosquitto_pub")
            .args(["-t", "sensors/th-9/temperature", "-m", "31"])
            .status();
        std::thread::sleep(Duration::from_millis(500));
        !received.lock().unwrap().is_empty()
    });
    assert_eq!(received.lock().unwrap()[0], "devices/th-9/commands fan-on");
}
