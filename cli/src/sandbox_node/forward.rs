//! Services of the sandbox node: one loopback TCP forwarder per Service port, passing each new
//! connection to one of the port's current endpoints (ready Pods the Service selects), as
//! kube-proxy does. Connections already open stay with their endpoint.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};

/// A Service port: namespace, Service name, port.
pub type PortKey = (String, String, u16);

/// Forwarders by Service port, and each one's endpoints.
#[derive(Debug, Default)]
pub struct Forwarders {
    listeners: BTreeMap<PortKey, (SocketAddr, tokio::task::JoinHandle<()>)>,
    endpoints: Arc<Mutex<BTreeMap<PortKey, Vec<SocketAddr>>>>,
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        for (_, task) in self.listeners.values() {
            task.abort();
        }
    }
}

impl Forwarders {
    /// The local address of `key`'s forwarder, started on first use.
    pub async fn addr(&mut self, key: &PortKey) -> Result<SocketAddr, String> {
        if let Some((addr, _)) = self.listeners.get(key) {
            return Ok(*addr);
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("cannot listen: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let task = tokio::spawn(serve(listener, key.clone(), self.endpoints.clone()));
        self.listeners.insert(key.clone(), (addr, task));
        Ok(addr)
    }

    /// Starts `key`'s forwarder listening on `at` (a Service's ClusterIP and port, when the
    /// ClusterIPs are loopback addresses), unless it is started already; its address.
    pub async fn listen_at(&mut self, key: &PortKey, at: SocketAddr) -> Result<SocketAddr, String> {
        if let Some((addr, _)) = self.listeners.get(key) {
            return Ok(*addr);
        }
        let listener = TcpListener::bind(at).await.map_err(|e| format!("cannot listen on {at}: {e}"))?;
        let task = tokio::spawn(serve(listener, key.clone(), self.endpoints.clone()));
        self.listeners.insert(key.clone(), (at, task));
        Ok(at)
    }

    /// The local address of `key`'s forwarder, if it is started.
    pub fn get(&self, key: &PortKey) -> Option<SocketAddr> {
        self.listeners.get(key).map(|(addr, _)| *addr)
    }

    /// Replaces every port's endpoints.
    pub fn set_endpoints(&self, all: BTreeMap<PortKey, Vec<SocketAddr>>) {
        *self.endpoints.lock().unwrap_or_else(PoisonError::into_inner) = all;
    }
}

async fn serve(
    listener: TcpListener,
    key: PortKey,
    endpoints: Arc<Mutex<BTreeMap<PortKey, Vec<SocketAddr>>>>,
) {
    let next = AtomicUsize::new(0);
    loop {
        let mut inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            Err(_) => {
                // Out of file descriptors or the like: pause instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let target = {
            let all = endpoints.lock().unwrap_or_else(PoisonError::into_inner);
            all.get(&key).filter(|e| !e.is_empty()).map(|e| e[next.fetch_add(1, Ordering::Relaxed) % e.len()])
        };
        // No endpoint: the connection is refused by closing it, as a Service without ready Pods.
        let Some(target) = target else { continue };
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo(tag: u8) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let _ = s.write_all(&[tag]).await;
                });
            }
        });
        addr
    }

    async fn first_byte(addr: SocketAddr) -> Option<u8> {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let mut b = [0u8; 1];
        match s.read(&mut b).await {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }

    #[tokio::test]
    async fn connections_follow_the_current_endpoints() {
        let mut f = Forwarders::default();
        let key: PortKey = ("keda".into(), "ebb-operator".into(), 9666);
        let addr = f.addr(&key).await.unwrap();
        assert_eq!(f.addr(&key).await.unwrap(), addr, "one forwarder per port");
        assert_eq!(first_byte(addr).await, None, "no endpoints: closed");
        let (a, b) = (echo(1).await, echo(2).await);
        f.set_endpoints(BTreeMap::from([(key.clone(), vec![a])]));
        assert_eq!(first_byte(addr).await, Some(1));
        f.set_endpoints(BTreeMap::from([(key.clone(), vec![b])]));
        assert_eq!(first_byte(addr).await, Some(2));
    }
}
