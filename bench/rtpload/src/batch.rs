//! Batched UDP I/O for the generator: `sendmmsg` and `recvmmsg` (through
//! nix, so no `unsafe` here), with kernel receive timestamps
//! (`SO_TIMESTAMPNS`, CLOCK_REALTIME) so that a receiver that drains its
//! socket in batches still knows when each datagram arrived.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};

/// Nanoseconds since the Unix epoch, the clock of kernel timestamps.
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Up to this many datagrams per system call.
pub const BATCH: usize = 64;

pub struct Sender {
    headers: MultiHeaders<SockaddrIn>,
}

impl Sender {
    pub fn new() -> Sender {
        Sender {
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Sends `packets[k]` to `destinations[k]`; returns how many left.
    pub fn send(
        &mut self,
        socket: &UdpSocket,
        packets: &[Vec<u8>],
        destinations: &[SocketAddrV4],
    ) -> usize {
        let slices: Vec<[IoSlice<'_>; 1]> = packets.iter().map(|p| [IoSlice::new(p)]).collect();
        let addresses: Vec<Option<SockaddrIn>> = destinations
            .iter()
            .map(|d| Some(SockaddrIn::from(*d)))
            .collect();
        let mut done = 0;
        while done < slices.len() {
            let end = (done + BATCH).min(slices.len());
            match sendmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                &slices[done..end],
                &addresses[done..end],
                [],
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(results) => {
                    let sent = results.count();
                    if sent == 0 {
                        break;
                    }
                    done += sent;
                }
                Err(_) => break,
            }
        }
        done
    }
}

/// One received datagram: where from, when the kernel queued it, its bytes.
pub struct Datagram<'a> {
    pub source: SocketAddr,
    pub arrival_ns: u64,
    pub bytes: &'a [u8],
}

pub struct Receiver {
    headers: MultiHeaders<SockaddrIn>,
    buffers: Vec<[u8; 2048]>,
}

impl Receiver {
    /// Turns on kernel receive timestamps on `socket`.
    pub fn new(socket: &UdpSocket) -> std::io::Result<Receiver> {
        setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(std::io::Error::from)?;
        Ok(Receiver {
            headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(nix::sys::time::TimeSpec))),
            buffers: vec![[0u8; 2048]; BATCH],
        })
    }

    /// Waits for at least one datagram (up to the socket's read timeout),
    /// then hands every datagram already queued (up to [`BATCH`]) to
    /// `each`. Returns how many.
    pub fn receive(&mut self, socket: &UdpSocket, mut each: impl FnMut(Datagram<'_>)) -> usize {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let Ok(results) = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) else {
            return 0;
        };
        let fallback = realtime_ns();
        let mut count = 0;
        for message in results {
            let arrival_ns = message
                .cmsgs()
                .ok()
                .and_then(|mut cmsgs| {
                    cmsgs.find_map(|c| match c {
                        ControlMessageOwned::ScmTimestampns(t) => {
                            Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
                        }
                        _ => None,
                    })
                })
                .unwrap_or(fallback);
            let Some(address) = message.address else {
                continue;
            };
            let source = SocketAddr::V4(SocketAddrV4::new(address.ip(), address.port()));
            let Some(bytes) = message.iovs().next() else {
                continue;
            };
            each(Datagram {
                source,
                arrival_ns,
                bytes,
            });
            count += 1;
        }
        count
    }
}
