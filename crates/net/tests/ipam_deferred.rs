//! IPAM with deferred address writes (berthd's mode): allocations and releases live in memory
//! until `flush`, the file on disk is always a whole earlier state, a store reopened without
//! the flush (a crash) is put right by `reconcile`, and networks' creation and removal are
//! written at once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
use std::net::IpAddr;

use berth_net::{Family, IpamStore, PoolConfig};

const NET: &str = "n1";

fn open(dir: &std::path::Path) -> IpamStore {
    let mut st = IpamStore::open(dir).unwrap();
    st.defer_address_writes();
    st
}

fn allocated(st: &IpamStore, id: &str) -> Vec<IpAddr> {
    st.network(id).unwrap().allocated().collect()
}

#[test]
fn addresses_reach_the_disk_at_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ipam");
    let mut st = open(&dir);
    st.create_network(NET, vec![PoolConfig::new("10.88.0.0/24".parse().unwrap())])
        .unwrap();
    assert!(
        !st.has_unwritten(),
        "a network's creation is written at once"
    );
    let a = st.allocate(NET, Family::V4).unwrap();
    let b = st.allocate(NET, Family::V4).unwrap();
    assert_ne!(a, b);
    assert!(st.has_unwritten());
    // On disk: the network as created, no address yet.
    assert!(allocated(&IpamStore::open(&dir).unwrap(), NET).is_empty());
    st.flush().unwrap();
    assert!(!st.has_unwritten());
    assert_eq!(allocated(&IpamStore::open(&dir).unwrap(), NET), vec![a, b]);
    assert!(st.release(NET, a).unwrap());
    st.flush().unwrap();
    assert_eq!(allocated(&IpamStore::open(&dir).unwrap(), NET), vec![b]);
}

#[test]
fn a_crash_before_the_flush_is_reconciled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ipam");
    let mut st = open(&dir);
    st.create_network(NET, vec![PoolConfig::new("10.88.1.0/24".parse().unwrap())])
        .unwrap();
    let kept = st.allocate(NET, Family::V4).unwrap();
    st.flush().unwrap();
    let gone = st.allocate(NET, Family::V4).unwrap();
    st.release(NET, kept).unwrap();
    let live = st.allocate(NET, Family::V4).unwrap();
    drop(st); // crashed: neither the release nor the two allocations were written
    let mut st = open(&dir);
    assert_eq!(allocated(&st, NET), vec![kept]);
    // The containers that run hold `gone`'s neighbour `live` only.
    let _ = gone;
    st.reconcile([(NET, live)]).unwrap();
    assert_eq!(allocated(&st, NET), vec![live]);
    assert!(!st.has_unwritten());
    assert_eq!(allocated(&IpamStore::open(&dir).unwrap(), NET), vec![live]);
}

#[test]
fn a_removed_network_is_not_written_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ipam");
    let mut st = open(&dir);
    st.create_network(NET, vec![PoolConfig::new("10.88.2.0/24".parse().unwrap())])
        .unwrap();
    let a = st.allocate(NET, Family::V4).unwrap();
    st.release(NET, a).unwrap();
    st.remove_network(NET).unwrap();
    assert!(!st.has_unwritten());
    st.flush().unwrap();
    let again = IpamStore::open(&dir).unwrap();
    assert!(again.network(NET).is_none());
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
}

#[test]
fn immediate_mode_writes_every_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ipam");
    let mut st = IpamStore::open(&dir).unwrap();
    st.create_network(NET, vec![PoolConfig::new("10.88.3.0/24".parse().unwrap())])
        .unwrap();
    let a = st.allocate(NET, Family::V4).unwrap();
    assert!(!st.has_unwritten());
    assert_eq!(allocated(&IpamStore::open(&dir).unwrap(), NET), vec![a]);
}
