//! The floor: what the kernel alone costs per keep-alive request, for bench/ to measure beside
//! ringstatic (`bench/run.sh --peers floor`).
//!
//! A bare io_uring loop with ringstatic's ring setup (SINGLE_ISSUER + DEFER_TASKRUN, multishot
//! accept, multishot recv into a provided-buffer ring, one send per response) that answers every
//! request with the same prebuilt `200` response: the bytes of one file, read once at start. It
//! parses nothing (a request ends at CRLF CRLF), looks nothing up, never formats a date and
//! ignores what the request asks for. It is not a server: it is the yardstick that says how much
//! of a request's CPU time is the kernel's TCP work, which no server can avoid, and so how much
//! is left for a server's own work. bench/ uses it only for single-file keep-alive scenarios of
//! files small enough to be sent from memory.
//!
//! Usage: `floor --file PATH [--listen ADDR:PORT] [--workers N]`. Workers are threads, each
//! with its own SO_REUSEPORT socket and ring, pinned to the N first CPUs it may use. Prints
//! `listening on http://ADDR` once per worker, like ringstatic.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use ringstatic::inherit;
use ringstatic::ring::{self, bufring::BufRing};

const ACCEPT: u64 = 1 << 62;
const RECV: u64 = 1 << 61;
const SEND: u64 = 1 << 60;
const BUF_GROUP: u16 = 0;

fn main() {
    match parse(std::env::args().skip(1).collect()) {
        Ok((file, addr, workers)) => {
            if let Err(e) = serve(&file, addr, workers) {
                eprintln!("floor: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("floor: {e}\nusage: floor --file PATH [--listen ADDR:PORT] [--workers N]");
            std::process::exit(2);
        }
    }
}

fn parse(args: Vec<String>) -> Result<(String, SocketAddr, usize), String> {
    let (mut file, mut addr, mut workers) = (None, "127.0.0.1:0".to_string(), 1usize);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--file" => file = Some(value()?),
            "--listen" => addr = value()?,
            "--workers" => {
                let v = value()?;
                workers = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(format!("--workers `{v}` is not a count"))?
            }
            _ => return Err(format!("unknown argument `{a}`")),
        }
    }
    let addr = addr
        .parse()
        .map_err(|_| format!("--listen `{addr}` is not an ADDR:PORT"))?;
    Ok((file.ok_or("--file is required")?, addr, workers))
}

fn serve(file: &str, mut addr: SocketAddr, workers: usize) -> io::Result<()> {
    let body = std::fs::read(file).map_err(|e| io::Error::new(e.kind(), format!("{file}: {e}")))?;
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nServer: floor\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
         Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\nETag: \"floor-{}\"\r\n\
         Accept-Ranges: bytes\r\n\r\n",
        body.len(),
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    // Leaked on purpose: every send in flight reads it until the process exits.
    let response: &'static [u8] = Box::leak(response.into_boxed_slice());
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let mut threads = Vec::new();
    for i in 0..workers {
        // The same listening socket ringstatic's master makes, deferring accepts as ringstatic
        // does by default (and nginx with `deferred` in bench/).
        let sock = inherit::listen_socket(addr)?;
        inherit::set_defer_accept(sock.as_raw_fd(), true)?;
        addr = inherit::local_addr(sock.as_raw_fd())?; // the other workers share its port
        println!("listening on http://{addr}");
        let cpu = cpus.get(i).copied();
        threads.push(std::thread::spawn(move || {
            if let Some(c) = cpu {
                core_affinity::set_for_current(c);
            }
            if let Err(e) = event_loop(sock.as_raw_fd(), response) {
                eprintln!("floor: worker {i}: {e}");
                std::process::exit(1);
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn push(ring: &mut IoUring, sqe: squeue::Entry) {
    // SAFETY: the entries only point at `response` ('static) or at nothing.
    while unsafe { ring.submission().push(&sqe) }.is_err() {
        let _ = ring.submit();
    }
}

fn recv(fd: RawFd) -> squeue::Entry {
    opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP)
        .build()
        .user_data(RECV | fd as u64)
}

fn event_loop(lfd: RawFd, response: &'static [u8]) -> io::Result<()> {
    let mut ring = ring::build(4096)?;
    let mut bufs = BufRing::new(&ring, BUF_GROUP, 4096, 4096)?;
    // Per fd: how much of a CRLF CRLF the last bytes matched (a request end split across reads).
    let mut matched: Vec<u8> = Vec::new();
    push(
        &mut ring,
        opcode::AcceptMulti::new(types::Fd(lfd))
            .build()
            .user_data(ACCEPT),
    );
    let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(4096);
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        done.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(ud, res, flags) in &done {
            if ud & ACCEPT != 0 {
                if res >= 0 {
                    let fd = res as usize;
                    if matched.len() <= fd {
                        matched.resize(fd + 1, 0);
                    }
                    matched[fd] = 0;
                    push(&mut ring, recv(res));
                }
                if !cqueue::more(flags) {
                    push(
                        &mut ring,
                        opcode::AcceptMulti::new(types::Fd(lfd))
                            .build()
                            .user_data(ACCEPT),
                    );
                }
            } else if ud & RECV != 0 {
                let fd = (ud & 0xffff_ffff) as RawFd;
                if res == -libc::ENOBUFS {
                    push(&mut ring, recv(fd));
                    continue;
                }
                if res <= 0 {
                    // EOF or error: the multishot recv has ended; sends still in flight hold
                    // their own reference to the socket.
                    // SAFETY: `fd` came from our accept and nothing else closes it.
                    unsafe { libc::close(fd) };
                    continue;
                }
                let Some(bid) = cqueue::buffer_select(flags) else {
                    continue;
                };
                let requests = count_ends(&mut matched[fd as usize], bufs.data(bid, res as usize));
                bufs.give_back(bid);
                for _ in 0..requests {
                    let s =
                        opcode::Send::new(types::Fd(fd), response.as_ptr(), response.len() as u32);
                    // WAITALL: the kernel finishes a short send itself, so no response is cut.
                    let s = s.flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL);
                    push(&mut ring, s.build().user_data(SEND));
                }
                if !cqueue::more(flags) {
                    push(&mut ring, recv(fd));
                }
            }
            // SEND completions need nothing: the response is static, and an error shows up on
            // the recv side as well.
        }
        done.clear();
    }
}

/// Counts the request ends (CRLF CRLF) in `data`, carrying a partial match across reads.
fn count_ends(state: &mut u8, data: &[u8]) -> usize {
    let mut n = 0;
    for &b in data {
        *state = match (*state, b) {
            (1, b'\n') => 2,
            (2, b'\r') => 3,
            (3, b'\n') => {
                n += 1;
                0
            }
            (_, b'\r') => 1,
            _ => 0,
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::count_ends;

    #[test]
    fn request_ends_are_counted_across_reads() {
        let mut s = 0;
        assert_eq!(
            count_ends(
                &mut s,
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n"
            ),
            1
        );
        assert_eq!(count_ends(&mut s, b"Host: a\r\n\r"), 0);
        assert_eq!(count_ends(&mut s, b"\n"), 1);
        assert_eq!(count_ends(&mut s, b"\r\r\n\r\n"), 1);
    }
}
