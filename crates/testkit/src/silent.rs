//! Endpoints that do not answer, for timeout tests: one that accepts connections and never
//! says a word, and one whose accept queue is full so that connecting hangs, as to a host
//! that drops packets.

use std::net::{TcpListener, TcpStream};

/// Accepts connections, reads what is sent, never answers. Lives as long as the process.
pub fn mute_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = vec![];
        for stream in listener.incoming().flatten() {
            held.push(stream); // kept open, never answered
        }
    });
    format!("http://{addr}")
}

/// A listener that never accepts, with its queue full: a TCP connect to it hangs until the
/// client's connect timeout (the kernel drops the SYN). Keep the returned guard alive.
pub struct Unconnectable {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    _listener: TcpListener,
    _filler: TcpStream,
}

/// See [`Unconnectable`].
pub fn unconnectable_endpoint() -> Unconnectable {
    use std::os::fd::FromRawFd;
    // std's TcpListener always asks for a long backlog; a backlog of 0 takes libc.
    // SAFETY: plain socket calls on a descriptor created here and then owned.
    let listener = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        TcpListener::from_raw_fd(fd)
    };
    let addr = listener.local_addr().unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    Unconnectable {
        endpoint: format!("http://{addr}"),
        _listener: listener,
        _filler: filler,
    }
}
