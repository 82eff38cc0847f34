//! A TCP proxy we control, standing in for the site's WAN link.
//!
//! While cut, it black-holes: new connections are accepted and never answered and existing ones
//! stop moving bytes, so the edge sees timeouts as it would when a router drops traffic, not
//! polite connection refusals.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug)]
pub struct WanProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
}

impl WanProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> std::io::Result<WanProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let (c, o, s, b) = (cut.clone(), open.clone(), stop.clone(), bytes.clone());
        std::thread::spawn(move || {
            while !s.load(SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if c.load(SeqCst) {
                            // Black hole: hold the socket, never answer.
                            o.lock().unwrap_or_else(|p| p.into_inner()).push(client);
                            continue;
                        }
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                        let mut conns = o.lock().unwrap_or_else(|p| p.into_inner());
                        for s in [&client, &server] {
                            if let Ok(clone) = s.try_clone() {
                                conns.push(clone);
                            }
                        }
                        drop(conns);
                        pump(client.try_clone(), server.try_clone(), c.clone(), b.clone());
                        pump(Ok(server), Ok(client), c.clone(), b.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(WanProxy { port, cut, open, stop, bytes })
    }

    /// Bytes carried so far, both directions (what the site's WAN link would bill).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(SeqCst)
    }

    /// Cuts the link: every open connection freezes, new ones hang.
    pub fn cut(&self) {
        self.cut.store(true, SeqCst);
    }

    /// Heals the link: frozen connections are closed (as a NAT would after the outage) and new
    /// connections go through again.
    pub fn heal(&self) {
        let mut conns = self.open.lock().unwrap_or_else(|p| p.into_inner());
        for c in conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        self.cut.store(false, SeqCst);
    }
}

impl Drop for WanProxy {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        self.heal();
    }
}

fn pump(from: std::io::Result<TcpStream>, to: std::io::Result<TcpStream>, cut: Arc<AtomicBool>, bytes: Arc<AtomicU64>) {
    let (Ok(mut from), Ok(mut to)) = (from, to) else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // While cut, bytes are swallowed: the peer waits for an answer that never comes.
            if cut.load(SeqCst) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            bytes.fetch_add(n as u64, SeqCst);
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
