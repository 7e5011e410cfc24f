//! A real smart-HTTP git server for the `gitops` tests: `git http-backend` (the CGI program git
//! ships) behind a tiny_http server on 127.0.0.1 that demands HTTP basic auth, the way a hosting
//! service answers `https://` clones. Nothing of git is imitated: every request that passes the
//! password check is handed to `git http-backend`, and its CGI answer goes back as it is.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const BACKEND: &str = "/usr/lib/git-core/git-http-backend";

/// What the server saw, for assertions: requests let through and requests refused.
#[derive(Default)]
pub struct Seen {
    pub authorized: AtomicUsize,
    pub refused: AtomicUsize,
    /// The user names clients sent (never the passwords).
    pub users: Mutex<Vec<String>>,
}

/// The server; it stops when dropped.
pub struct GitHttp {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub port: u16,
    pub seen: Arc<Seen>,
}

impl GitHttp {
    /// Serves the repositories under `root` to clients whose basic-auth password is `password`.
    pub fn start(root: &Path, password: &str) -> GitHttp {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a local HTTP server"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let seen = Arc::new(Seen::default());
        let thread = {
            let (server, seen) = (server.clone(), seen.clone());
            let (root, password) = (root.to_path_buf(), password.to_string());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let (root, password, seen) = (root.clone(), password.clone(), seen.clone());
                    // libgit2 may open a second connection while the first is still answered.
                    std::thread::spawn(move || serve(request, &root, &password, &seen));
                }
            })
        };
        GitHttp {
            server,
            thread: Some(thread),
            port,
            seen,
        }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|header| header.field.equiv(name))
        .map(|header| header.value.as_str().to_string())
}

/// The user of a `Basic` authorization whose password is `password`.
fn authorized_user(request: &tiny_http::Request, password: &str) -> Option<String> {
    use base64::Engine;
    let value = header(request, "Authorization")?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, given) = decoded.split_once(':')?;
    (given == password).then(|| user.to_string())
}

fn serve(mut request: tiny_http::Request, root: &Path, password: &str, seen: &Seen) {
    let Some(user) = authorized_user(&request, password) else {
        seen.refused.fetch_add(1, Ordering::SeqCst);
        let challenge =
            tiny_http::Header::from_bytes("WWW-Authenticate", r#"Basic realm="vane-test""#)
                .unwrap();
        let _ = request.respond(
            tiny_http::Response::from_string("authentication required")
                .with_status_code(401)
                .with_header(challenge),
        );
        return;
    };
    seen.authorized.fetch_add(1, Ordering::SeqCst);
    seen.users.lock().unwrap().push(user.clone());
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    // tiny_http has already undone any chunked transfer encoding: the backend gets a length.
    let mut body = Vec::new();
    request.as_reader().read_to_end(&mut body).unwrap();
    let mut command = Command::new(BACKEND);
    command
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", request.method().as_str())
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        // `git http-backend` allows pushes only from an authenticated user.
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (variable, name) in [
        ("CONTENT_TYPE", "Content-Type"),
        ("HTTP_CONTENT_ENCODING", "Content-Encoding"),
        ("GIT_PROTOCOL", "Git-Protocol"),
    ] {
        if let Some(value) = header(&request, name) {
            command.env(variable, value);
        }
    }
    let mut child = command.spawn().expect("git http-backend starts");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output)
        .unwrap();
    let _ = writer.join();
    let _ = child.wait();
    let _ = request.respond(cgi_response(&output));
}

/// A CGI answer (headers, a blank line, the body) as an HTTP response.
fn cgi_response(output: &[u8]) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let split = output
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| (at, at + 4))
        .or_else(|| {
            output
                .windows(2)
                .position(|window| window == b"\n\n")
                .map(|at| (at, at + 2))
        })
        .unwrap_or((output.len(), output.len()));
    let head = String::from_utf8_lossy(&output[..split.0]).into_owned();
    let mut response = tiny_http::Response::from_data(output[split.1..].to_vec());
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Status") {
            let code = value.split(' ').next().unwrap_or("200");
            response = response.with_status_code(code.parse::<u16>().unwrap_or(500));
        } else if let Ok(header) = tiny_http::Header::from_bytes(name.trim(), value) {
            response = response.with_header(header);
        }
    }
    response
}
