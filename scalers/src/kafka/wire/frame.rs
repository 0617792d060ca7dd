//! Reading one response frame within bounds. The declared length is checked against what the
//! request can produce (each `Call` states its own maximum, never above `MAX_FRAME`) before any
//! byte of the body is read; the body is then read as it arrives, never reserved up front, so a
//! peer that declares much and sends little costs only what it sent. Every byte held — frame
//! bodies being read and the estimated size of responses being decoded — counts against one
//! process-wide budget, `BUDGET`; a response that would exceed it is refused with an error
//! instead of growing the process towards its memory limit.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest response frame accepted for any request.
pub const MAX_FRAME: usize = 16 << 20;
/// Largest response to a request whose answer does not grow with what it asks (ApiVersions,
/// SaslHandshake, SaslAuthenticate, FindCoordinator for one group).
pub const SMALL_FRAME: usize = 64 << 10;
/// Bytes all connections of the process may hold at once for responses being read or decoded.
pub const BUDGET: usize = 64 << 20;

/// Bytes read per step while a body arrives.
const CHUNK: usize = 64 << 10;

/// A pool of bytes that shares are taken from: the process-wide one is [`BUDGET`] bytes.
#[derive(Debug)]
pub struct Pool {
    held: AtomicUsize,
    limit: usize,
}

impl Pool {
    /// An empty pool of `limit` bytes.
    pub const fn new(limit: usize) -> Self {
        Self { held: AtomicUsize::new(0), limit }
    }

    /// Bytes currently held against this pool.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// The process-wide pool every connection reads into.
static PROCESS: Pool = Pool::new(BUDGET);

/// Bytes currently held against `BUDGET` by every connection.
pub fn held() -> usize {
    PROCESS.held()
}

/// A share of a pool (the process-wide one unless made with [`Share::of`]), given back when
/// dropped.
#[derive(Debug)]
pub struct Share {
    bytes: usize,
    pool: &'static Pool,
}

impl Default for Share {
    fn default() -> Self {
        Self::of(&PROCESS)
    }
}

impl Share {
    /// An empty share of `pool`.
    pub fn of(pool: &'static Pool) -> Self {
        Self { bytes: 0, pool }
    }

    /// Bytes this share holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `n` more bytes of the pool; on refusal returns the bytes held in the pool.
    pub fn grow(&mut self, n: usize) -> Result<(), usize> {
        let limit = self.pool.limit;
        self.pool.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
            h.checked_add(n).filter(|t| *t <= limit)
        })?;
        self.bytes += n;
        Ok(())
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.pool.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Why a frame was not read.
#[derive(Debug)]
pub enum FrameError {
    Io(std::io::Error),
    /// Declared length above what the request can produce.
    TooLarge {
        len: usize,
        cap: usize,
    },
    /// The process-wide budget is spent.
    Budget {
        held: usize,
    },
}

/// Reads one length-prefixed frame of at most `cap` bytes, holding its bytes in `share`.
pub async fn read<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    cap: usize,
    share: &mut Share,
) -> Result<Vec<u8>, FrameError> {
    let len = stream.read_u32().await.map_err(FrameError::Io)? as usize;
    let cap = cap.min(MAX_FRAME);
    if len > cap {
        return Err(FrameError::TooLarge { len, cap });
    }
    let mut body: Vec<u8> = Vec::new();
    while body.len() < len {
        let step = CHUNK.min(len - body.len());
        let need = body.len() + step;
        if need > body.capacity() {
            // Grow geometrically (bounded by the declared length), counting the capacity.
            let new_cap = (body.capacity() * 2).max(need).min(len);
            share.grow(new_cap - body.capacity()).map_err(|held| FrameError::Budget { held })?;
            body.reserve_exact(new_cap - body.len());
        }
        let start = body.len();
        body.resize(need, 0);
        stream.read_exact(&mut body[start..]).await.map_err(FrameError::Io)?;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_frames_in_steps_and_gives_the_budget_back() {
        let mut wire = (200_000u32).to_be_bytes().to_vec();
        wire.extend((0..200_000u32).map(|i| i as u8));
        // A pool of this test's own: other tests reading frames at the same time take from the
        // process-wide one and cannot disturb the figures.
        static POOL: Pool = Pool::new(BUDGET);
        let mut share = Share::of(&POOL);
        let body = read(&mut wire.as_slice(), MAX_FRAME, &mut share).await.unwrap();
        assert_eq!(body.len(), 200_000);
        assert_eq!(body[199_999], (199_999u32) as u8);
        assert!(share.bytes() >= 200_000 && share.bytes() < 400_000, "{}", share.bytes());
        assert_eq!(POOL.held(), share.bytes());
        drop(share);
        assert_eq!(POOL.held(), 0);
    }

    #[tokio::test]
    async fn refuses_declared_lengths_above_the_cap_and_truncated_bodies() {
        let wire = 70_000u32.to_be_bytes();
        let e = read(&mut wire.as_slice(), SMALL_FRAME, &mut Share::default()).await.unwrap_err();
        assert!(matches!(e, FrameError::TooLarge { len: 70_000, cap: SMALL_FRAME }), "{e:?}");
        let wire = (u32::MAX).to_be_bytes();
        let e = read(&mut wire.as_slice(), usize::MAX, &mut Share::default()).await.unwrap_err();
        assert!(matches!(e, FrameError::TooLarge { cap: MAX_FRAME, .. }), "{e:?}");
        let mut wire = 10u32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"short");
        let e = read(&mut wire.as_slice(), SMALL_FRAME, &mut Share::default()).await.unwrap_err();
        assert!(matches!(e, FrameError::Io(_)), "{e:?}");
    }

    #[test]
    fn the_budget_is_process_wide() {
        let mut a = Share::default();
        let mut b = Share::default();
        a.grow(BUDGET / 2).unwrap();
        // Other tests may hold a little; what is left is below BUDGET / 2 + 1.
        let e = b.grow(BUDGET / 2 + 1).unwrap_err();
        assert!(e >= BUDGET / 2, "{e}");
        drop(a);
        b.grow(BUDGET / 4).unwrap();
    }
}
