//! Store behaviour, each test on its own temporary data directory.

use super::*;
use serde_json::json;

fn pods() -> Gvr {
    Gvr::new("", "v1", "pods")
}

fn ds() -> Gvr {
    Gvr::new("apps", "v1", "daemonsets")
}

fn pod(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn rv_of(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn w() -> WriteOptions {
    WriteOptions::default()
}

#[test]
fn the_database_and_its_wal_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (d, s) = open();
    s.create(&pods(), "default", pod("a", json!({})), &w())
        .unwrap();
    for f in ["store.db", "store.db-wal", "store.db-shm"] {
        let mode = std::fs::metadata(d.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // An older data directory's database is made private when opened.
    drop(s);
    let db = d.path().join("store.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _s = Store::open(d.path()).unwrap();
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn create_fills_system_fields_and_increments_the_resource_version() {
    let (_d, s) = open();
    let a = s
        .create(&pods(), "default", pod("a", json!({})), &w())
        .unwrap();
    let b = s
        .create(&pods(), "default", pod("b", json!({})), &w())
        .unwrap();
    assert_eq!(a["metadata"]["namespace"], "default");
    assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(time::parse_rfc3339(a["metadata"]["creationTimestamp"].as_str().unwrap()).is_some());
    assert_eq!(rv_of(&b), rv_of(&a) + 1);
    assert_eq!(s.current_resource_version().unwrap(), rv_of(&b));
    assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
    assert_eq!(s.get(&pods(), "default", "a").unwrap(), a);
    assert!(a["metadata"].get("generation").is_none());
}

#[test]
fn duplicate_create_is_already_exists_and_missing_get_is_not_found() {
    let (_d, s) = open();
    s.create(&pods(), "default", pod("web", json!({})), &w())
        .unwrap();
    let e = s
        .create(&pods(), "default", pod("web", json!({})), &w())
        .unwrap_err();
    assert_eq!(e.to_string(), "pods \"web\" already exists");
    // The same name in another namespace is a different object.
    s.create(&pods(), "other", pod("web", json!({})), &w())
        .unwrap();
    let e = s.get(&ds(), "default", "nope").unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }));
    assert_eq!(e.to_string(), "daemonsets.apps \"nope\" not found");
}

#[test]
fn create_without_a_name_is_a_bad_request() {
    let (_d, s) = open();
    let e = s
        .create(&pods(), "default", json!({"metadata": {}}), &w())
        .unwrap_err();
    assert!(matches!(e, StoreError::BadRequest { .. }), "{e:?}");
    let e = s
        .create(&pods(), "default", json!([1, 2]), &w())
        .unwrap_err();
    assert!(matches!(e, StoreError::BadRequest { .. }), "{e:?}");
}

#[test]
fn update_with_a_stale_resource_version_conflicts_with_the_kubernetes_message() {
    let (_d, s) = open();
    let v1 = s
        .create(&pods(), "default", pod("x", json!({})), &w())
        .unwrap();
    let mut v2 = v1.clone();
    v2["metadata"]["labels"] = json!({"a": "b"});
    let v2 = s.update(&pods(), "default", "x", v2, &w()).unwrap();
    assert!(rv_of(&v2) > rv_of(&v1));
    let mut stale = v1.clone();
    stale["metadata"]["labels"] = json!({"a": "c"});
    let e = s.update(&pods(), "default", "x", stale, &w()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Without a resourceVersion the update is unconditional.
    let mut unconditional = v1;
    unconditional["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    unconditional["metadata"]["labels"] = json!({"a": "d"});
    let v3 = s
        .update(&pods(), "default", "x", unconditional, &w())
        .unwrap();
    assert_eq!(v3["metadata"]["labels"]["a"], "d");
}

#[test]
fn update_keeps_system_fields_and_a_no_op_keeps_the_resource_version() {
    let (_d, s) = open();
    let v1 = s
        .create(&pods(), "default", pod("x", json!({})), &w())
        .unwrap();
    let mut forged = v1.clone();
    forged["metadata"]["uid"] = json!("forged");
    forged["metadata"]["creationTimestamp"] = json!("2000-01-01T00:00:00Z");
    let same = s.update(&pods(), "default", "x", forged, &w()).unwrap();
    assert_eq!(same, v1, "system fields are restored, so nothing changed");
    assert_eq!(s.current_resource_version().unwrap(), rv_of(&v1));
}

#[test]
fn generation_starts_at_one_and_bumps_only_on_spec_changes() {
    let (_d, s) = open();
    let opts = WriteOptions {
        tracks_generation: true,
        ..Default::default()
    };
    let obj = json!({"metadata": {"name": "d"}, "spec": {"x": 1}});
    let v1 = s.create(&ds(), "default", obj, &opts).unwrap();
    assert_eq!(v1["metadata"]["generation"], 1);
    let mut v2 = v1.clone();
    v2["metadata"]["labels"] = json!({"l": "1"});
    v2["status"] = json!({"numberReady": 1});
    let v2 = s.update(&ds(), "default", "d", v2, &opts).unwrap();
    assert_eq!(v2["metadata"]["generation"], 1);
    let mut v3 = v2.clone();
    v3["spec"]["x"] = json!(2);
    let v3 = s.update(&ds(), "default", "d", v3, &opts).unwrap();
    assert_eq!(v3["metadata"]["generation"], 2);
}

#[test]
fn dry_run_writes_nothing() {
    let (_d, s) = open();
    let dry = WriteOptions {
        dry_run: true,
        ..Default::default()
    };
    let out = s
        .create(&pods(), "default", pod("dry", json!({})), &dry)
        .unwrap();
    assert_eq!(out["metadata"]["name"], "dry");
    assert!(s.get(&pods(), "default", "dry").is_err());
    assert_eq!(s.current_resource_version().unwrap(), 0);
}

#[test]
fn deletion_without_grace_or_finalizers_is_immediate() {
    let (_d, s) = open();
    let v1 = s
        .create(&pods(), "default", pod("x", json!({})), &w())
        .unwrap();
    let out = s
        .delete(&pods(), "default", "x", &DeleteOptions::default())
        .unwrap();
    match out {
        DeleteOutcome::Deleted(obj) => assert_eq!(rv_of(&obj), rv_of(&v1) + 1),
        other => panic!("expected Deleted, got {other:?}"),
    }
    assert!(matches!(
        s.get(&pods(), "default", "x").unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(matches!(
        s.delete(&pods(), "default", "x", &DeleteOptions::default())
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

#[test]
fn graceful_deletion_marks_the_object_until_deleted_with_zero_grace() {
    let (_d, s) = open();
    s.create(&pods(), "default", pod("x", json!({})), &w())
        .unwrap();
    let graceful = DeleteOptions {
        grace_period_seconds: Some(30),
        ..Default::default()
    };
    let out = s.delete(&pods(), "default", "x", &graceful).unwrap();
    let DeleteOutcome::Pending(obj) = out else {
        panic!("expected Pending")
    };
    assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 30);
    let ts = time::parse_rfc3339(obj["metadata"]["deletionTimestamp"].as_str().unwrap()).unwrap();
    assert!(ts >= time::now_unix() + 25);
    // Still readable while terminating.
    assert_eq!(s.get(&pods(), "default", "x").unwrap(), obj);
    let out = s
        .delete(
            &pods(),
            "default",
            "x",
            &DeleteOptions {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(matches!(out, DeleteOutcome::Deleted(_)));
    assert!(s.get(&pods(), "default", "x").is_err());
}

#[test]
fn finalizers_keep_the_object_until_they_are_cleared() {
    let (_d, s) = open();
    let mut p = pod("f", json!({}));
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    s.create(&pods(), "default", p, &w()).unwrap();
    let out = s
        .delete(&pods(), "default", "f", &DeleteOptions::default())
        .unwrap();
    let DeleteOutcome::Pending(marked) = out else {
        panic!("expected Pending")
    };
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    // Deleting again changes nothing while the finalizer is there.
    assert!(matches!(
        s.delete(&pods(), "default", "f", &DeleteOptions::default())
            .unwrap(),
        DeleteOutcome::Pending(_)
    ));
    let mut cleared = marked.clone();
    cleared["metadata"]["finalizers"] = json!([]);
    let last = s.update(&pods(), "default", "f", cleared, &w()).unwrap();
    assert!(last["metadata"]["deletionTimestamp"].is_string());
    assert!(matches!(
        s.get(&pods(), "default", "f").unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

#[test]
fn deletes_add_and_remove_collector_finalizers_and_shorten_grace() {
    let (_d, s) = open();
    s.create(&pods(), "default", pod("o", json!({})), &w())
        .unwrap();
    let orphan = DeleteOptions {
        add_finalizers: vec!["orphan".into()],
        remove_finalizers: vec!["foregroundDeletion".into()],
        ..Default::default()
    };
    let DeleteOutcome::Pending(marked) = s.delete(&pods(), "default", "o", &orphan).unwrap() else {
        panic!("an orphan delete keeps the object")
    };
    assert_eq!(marked["metadata"]["finalizers"], json!(["orphan"]));
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    // A second delete with another policy swaps the finalizer.
    let fg = DeleteOptions {
        add_finalizers: vec!["foregroundDeletion".into()],
        remove_finalizers: vec!["orphan".into()],
        ..Default::default()
    };
    let DeleteOutcome::Pending(swapped) = s.delete(&pods(), "default", "o", &fg).unwrap() else {
        panic!("still pending")
    };
    assert_eq!(
        swapped["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    // Background clears it, and with nothing left the object goes.
    let bg = DeleteOptions {
        remove_finalizers: vec!["orphan".into(), "foregroundDeletion".into()],
        ..Default::default()
    };
    assert!(matches!(
        s.delete(&pods(), "default", "o", &bg).unwrap(),
        DeleteOutcome::Deleted(_)
    ));

    // A graceful delete pending on a finalizer takes a shorter grace period, so the object
    // goes once the finalizer does.
    let mut p = pod("g", json!({}));
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    s.create(&pods(), "default", p, &w()).unwrap();
    let graceful = |g| DeleteOptions {
        grace_period_seconds: Some(g),
        ..Default::default()
    };
    s.delete(&pods(), "default", "g", &graceful(30)).unwrap();
    let DeleteOutcome::Pending(short) = s.delete(&pods(), "default", "g", &graceful(0)).unwrap()
    else {
        panic!("the finalizer holds it")
    };
    assert_eq!(short["metadata"]["deletionGracePeriodSeconds"], 0);
    let mut cleared = short.clone();
    cleared["metadata"]["finalizers"] = json!([]);
    s.update(&pods(), "default", "g", cleared, &w()).unwrap();
    assert!(s.get(&pods(), "default", "g").is_err());
}

#[test]
fn scan_finds_the_objects_whose_text_contains_a_needle() {
    let (_d, s) = open();
    let mut owned = pod("owned", json!({}));
    owned["metadata"]["ownerReferences"] = json!([{"uid": "u"}]);
    s.create(&pods(), "default", owned, &w()).unwrap();
    s.create(&pods(), "default", pod("free", json!({})), &w())
        .unwrap();
    let found = s.scan_containing("\"ownerReferences\"").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, pods().key());
    assert_eq!(found[0].1["metadata"]["name"], "owned");
}

#[test]
fn delete_preconditions_conflict_when_they_do_not_match() {
    let (_d, s) = open();
    s.create(&pods(), "default", pod("p", json!({})), &w())
        .unwrap();
    let e = s
        .delete(
            &pods(),
            "default",
            "p",
            &DeleteOptions {
                precondition_uid: Some("other".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().starts_with("Operation cannot be fulfilled on pods \"p\": the UID in the precondition (other) does not match"), "{e}");
    assert!(s.get(&pods(), "default", "p").is_ok());
}

#[test]
fn list_filters_by_namespace_labels_and_fields_in_key_order() {
    let (_d, s) = open();
    s.create(&pods(), "b", pod("z", json!({"app": "web"})), &w())
        .unwrap();
    s.create(&pods(), "a", pod("y", json!({"app": "db"})), &w())
        .unwrap();
    s.create(
        &pods(),
        "a",
        pod("x", json!({"app": "web", "tier": "1"})),
        &w(),
    )
    .unwrap();
    s.create(
        &ds(),
        "a",
        pod("other-resource", json!({"app": "web"})),
        &w(),
    )
    .unwrap();
    let names = |r: &ListResult| -> Vec<String> {
        r.items
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let all = s.list(&pods(), None, &ListOptions::default()).unwrap();
    assert_eq!(names(&all), ["a/x", "a/y", "b/z"]);
    assert_eq!(all.resource_version, s.current_resource_version().unwrap());
    let in_a = s.list(&pods(), Some("a"), &ListOptions::default()).unwrap();
    assert_eq!(names(&in_a), ["a/x", "a/y"]);
    let web = ListOptions {
        labels: LabelSelector::parse("app=web").unwrap(),
        ..Default::default()
    };
    assert_eq!(names(&s.list(&pods(), None, &web).unwrap()), ["a/x", "b/z"]);
    let not_tier = ListOptions {
        labels: LabelSelector::parse("app in (web,db),!tier").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        names(&s.list(&pods(), None, &not_tier).unwrap()),
        ["a/y", "b/z"]
    );
    let by_name = ListOptions {
        fields: FieldSelector::parse("metadata.name=y").unwrap(),
        ..Default::default()
    };
    assert_eq!(names(&s.list(&pods(), None, &by_name).unwrap()), ["a/y"]);
    let by_ns = ListOptions {
        fields: FieldSelector::parse("metadata.namespace!=a").unwrap(),
        ..Default::default()
    };
    assert_eq!(names(&s.list(&pods(), None, &by_ns).unwrap()), ["b/z"]);
}

#[test]
fn pagination_returns_continue_tokens_until_the_end() {
    let (_d, s) = open();
    for i in 0..5 {
        s.create(&pods(), "default", pod(&format!("p{i}"), json!({})), &w())
            .unwrap();
    }
    let mut opts = ListOptions {
        limit: Some(2),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    let first_rv = s.current_resource_version().unwrap();
    loop {
        let page = s.list(&pods(), Some("default"), &opts).unwrap();
        pages += 1;
        assert_eq!(page.resource_version, first_rv);
        seen.extend(
            page.items
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page.continue_token {
            Some(t) => {
                assert_eq!(page.remaining_item_count, Some(5 - seen.len() as u64));
                opts.continue_token = Some(t);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4"]);
    let bad = ListOptions {
        continue_token: Some("zz".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.list(&pods(), None, &bad).unwrap_err(),
        StoreError::BadRequest { .. }
    ));
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn next(w: &mut Watch) -> WatchEvent {
    tokio::time::timeout(std::time::Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10s")
        .unwrap()
}

#[test]
fn watch_from_zero_replays_current_objects_then_follows_changes() {
    let (_d, s) = open();
    rt().block_on(async {
        s.create(&pods(), "default", pod("a", json!({})), &w())
            .unwrap();
        let mut watch = s
            .watch(
                &pods(),
                Some("default"),
                None,
                Default::default(),
                Default::default(),
            )
            .unwrap();
        let ev = next(&mut watch).await;
        assert_eq!(
            (ev.event, ev.object["metadata"]["name"].as_str()),
            (EventType::Added, Some("a"))
        );
        s.create(&pods(), "other", pod("ignored", json!({})), &w())
            .unwrap();
        s.create(&ds(), "default", pod("ignored", json!({})), &w())
            .unwrap();
        let b = s
            .create(&pods(), "default", pod("b", json!({})), &w())
            .unwrap();
        let ev = next(&mut watch).await;
        assert_eq!(ev.event, EventType::Added);
        assert_eq!(ev.object, b);
        assert_eq!(watch.bookmark_resource_version(), Some(rv_of(&b)));
        s.delete(&pods(), "default", "a", &DeleteOptions::default())
            .unwrap();
        let ev = next(&mut watch).await;
        assert_eq!(ev.event, EventType::Deleted);
        assert_eq!(ev.object["metadata"]["name"], "a");
        assert_eq!(ev.resource_version, s.current_resource_version().unwrap());
    });
}

#[test]
fn watch_from_a_resource_version_replays_only_later_changes() {
    let (_d, s) = open();
    rt().block_on(async {
        let a = s
            .create(&pods(), "default", pod("a", json!({})), &w())
            .unwrap();
        let mut a2 = a.clone();
        a2["metadata"]["labels"] = json!({"v": "2"});
        s.update(&pods(), "default", "a", a2, &w()).unwrap();
        let mut watch = s
            .watch(
                &pods(),
                None,
                Some(rv_of(&a)),
                Default::default(),
                Default::default(),
            )
            .unwrap();
        let ev = next(&mut watch).await;
        assert_eq!(ev.event, EventType::Modified);
        assert_eq!(ev.object["metadata"]["labels"]["v"], "2");
        assert_eq!(ev.resource_version, rv_of(&a) + 1);
    });
}

#[test]
fn watch_with_a_selector_turns_matching_transitions_into_added_and_deleted() {
    let (_d, s) = open();
    rt().block_on(async {
        let sel = LabelSelector::parse("app=web").unwrap();
        let mut watch = s
            .watch(&pods(), None, Some(0), sel, Default::default())
            .unwrap();
        let p = s
            .create(&pods(), "default", pod("p", json!({"app": "db"})), &w())
            .unwrap();
        let mut p2 = p.clone();
        p2["metadata"]["labels"] = json!({"app": "web"});
        let p2 = s.update(&pods(), "default", "p", p2, &w()).unwrap();
        let ev = next(&mut watch).await;
        assert_eq!(ev.event, EventType::Added, "started matching");
        let mut p3 = p2.clone();
        p3["metadata"]["labels"] = json!({"app": "db"});
        s.update(&pods(), "default", "p", p3, &w()).unwrap();
        let ev = next(&mut watch).await;
        assert_eq!(ev.event, EventType::Deleted, "stopped matching");
    });
}

#[test]
fn watch_from_a_compacted_resource_version_is_expired() {
    let (_d, s) = open();
    for i in 0..5 {
        s.create(&pods(), "default", pod(&format!("p{i}"), json!({})), &w())
            .unwrap();
    }
    s.compact(3).unwrap();
    let e = s
        .watch(
            &pods(),
            None,
            Some(2),
            Default::default(),
            Default::default(),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "too old resource version: 2 (3)");
    assert!(s
        .watch(
            &pods(),
            None,
            Some(3),
            Default::default(),
            Default::default()
        )
        .is_ok());
}

#[test]
fn the_event_log_is_compacted_beyond_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(
        dir.path(),
        Options {
            event_retention: 10,
            ..Default::default()
        },
    )
    .unwrap();
    for i in 0..30 {
        s.create(&pods(), "default", pod(&format!("p{i}"), json!({})), &w())
            .unwrap();
    }
    let compacted = s.compacted_resource_version().unwrap();
    assert!((10..=20).contains(&compacted), "compacted to {compacted}");
    assert!(matches!(
        s.watch(
            &pods(),
            None,
            Some(1),
            Default::default(),
            Default::default()
        )
        .unwrap_err(),
        StoreError::Expired { .. }
    ));
    assert_eq!(
        s.list(&pods(), None, &ListOptions::default())
            .unwrap()
            .items
            .len(),
        30
    );
}

#[test]
fn objects_resource_versions_and_the_event_log_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, before) = {
        let s = Store::open(dir.path()).unwrap();
        let a = s
            .create(&pods(), "default", pod("a", json!({})), &w())
            .unwrap();
        s.create(&pods(), "default", pod("b", json!({})), &w())
            .unwrap();
        (a, s.current_resource_version().unwrap())
    };
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.current_resource_version().unwrap(), before);
    assert_eq!(s.get(&pods(), "default", "a").unwrap(), a);
    let c = s
        .create(&pods(), "default", pod("c", json!({})), &w())
        .unwrap();
    assert_eq!(
        rv_of(&c),
        before + 1,
        "the counter continues after a restart"
    );
    rt().block_on(async {
        let mut watch = s
            .watch(
                &pods(),
                None,
                Some(rv_of(&a)),
                Default::default(),
                Default::default(),
            )
            .unwrap();
        let names: Vec<String> = [next(&mut watch).await, next(&mut watch).await]
            .iter()
            .map(|e| e.object["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["b", "c"]);
    });
}

#[test]
fn a_lagging_watcher_catches_up_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(
        dir.path(),
        Options {
            live_buffer: 8,
            ..Default::default()
        },
    )
    .unwrap();
    rt().block_on(async {
        let mut watch = s
            .watch(
                &pods(),
                None,
                Some(0),
                Default::default(),
                Default::default(),
            )
            .unwrap();
        // More writes than the live channel holds.
        for i in 0..100 {
            s.create(
                &pods(),
                "default",
                pod(&format!("p{i:05}"), json!({})),
                &w(),
            )
            .unwrap();
        }
        for i in 0..100 {
            let ev = next(&mut watch).await;
            assert_eq!(ev.object["metadata"]["name"], format!("p{i:05}"));
        }
    });
}

#[test]
fn expiring_objects_are_deleted_with_a_deleted_event_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let events = Gvr::new("", "v1", "events");
    let ttl = std::time::Duration::from_millis(300);
    let open = || {
        Store::open_with(
            dir.path(),
            Options {
                ttl: vec![(events.clone(), ttl)],
                ..Default::default()
            },
        )
        .unwrap()
    };
    let s = open();
    let ev = |n: &str| json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": n}});
    s.create(&events, "default", ev("e1"), &w()).unwrap();
    s.create(&pods(), "default", pod("p", json!({})), &w())
        .unwrap();
    assert_eq!(s.leased(), 1, "only events hold a lease");
    let rv = s.current_resource_version().unwrap();
    // Nothing is due before the TTL; once it is, e1 goes with a DELETED event.
    while s.expire(10).unwrap() == 0 {
        assert!(s.get(&events, "default", "e1").is_ok());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(matches!(
        s.get(&events, "default", "e1"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.get(&pods(), "default", "p").is_ok());
    assert_eq!(s.leased(), 0);
    rt().block_on(async {
        let mut watch = s
            .watch(
                &events,
                None,
                Some(rv),
                Default::default(),
                Default::default(),
            )
            .unwrap();
        let e = watch.next().await.unwrap();
        assert_eq!(e.event, EventType::Deleted);
        assert_eq!(e.object["metadata"]["name"], "e1");
    });
    // Bounded work per pass.
    for i in 0..5 {
        s.create(&events, "default", ev(&format!("b{i}")), &w())
            .unwrap();
    }
    std::thread::sleep(ttl);
    assert_eq!(s.expire(2).unwrap(), 2);
    assert_eq!(s.expire(10).unwrap(), 3);
    // A reopened store gives what it holds a whole TTL again.
    s.create(&events, "default", ev("kept"), &w()).unwrap();
    drop(s);
    let s = open();
    assert_eq!(s.leased(), 1);
    assert!(s.get(&events, "default", "kept").is_ok());
}

/// The names an informer holds for `gvr`, in its order.
fn informer_names(i: &Informer, gvr: &Gvr) -> Vec<String> {
    i.list(gvr)
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_informer_follows_creates_updates_and_deletes_of_its_resources_only() {
    let (_d, s) = open();
    s.create(&pods(), "default", pod("b", json!({})), &w())
        .unwrap();
    s.create(&ds(), "default", pod("d", json!({})), &w())
        .unwrap();
    let mut inf = s.informer(&[pods()]).unwrap();
    assert_eq!(informer_names(&inf, &pods()), ["b"]);
    assert!(inf.list(&ds()).is_empty(), "not an informed resource");

    s.create(&pods(), "default", pod("a", json!({})), &w())
        .unwrap();
    s.create(&pods(), "aaa", pod("z", json!({})), &w()).unwrap();
    s.update(&pods(), "default", "b", pod("b", json!({"v": "2"})), &w())
        .unwrap();
    s.create(&ds(), "default", pod("e", json!({})), &w())
        .unwrap();
    // Nothing applied before sync.
    assert_eq!(informer_names(&inf, &pods()), ["b"]);
    inf.sync().unwrap();
    // The store's list order: namespace, then name.
    assert_eq!(informer_names(&inf, &pods()), ["z", "a", "b"]);
    assert_eq!(inf.list(&pods())[2]["metadata"]["labels"]["v"], "2");
    assert_eq!(
        inf.resource_version(),
        s.current_resource_version().unwrap()
    );

    s.delete(&pods(), "default", "a", &DeleteOptions::default())
        .unwrap();
    inf.sync().unwrap();
    assert_eq!(informer_names(&inf, &pods()), ["z", "b"]);
    let listed: Vec<Value> = s
        .list(&pods(), None, &ListOptions::default())
        .unwrap()
        .items;
    let cached: Vec<Value> = inf.list(&pods()).into_iter().cloned().collect();
    assert_eq!(cached, listed);
}

#[test]
fn an_informer_whose_feed_overflowed_lists_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(
        dir.path(),
        Options {
            live_buffer: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let mut inf = s.informer(&[pods()]).unwrap();
    for i in 0..20 {
        s.create(
            &pods(),
            "default",
            pod(&format!("p{i:02}"), json!({})),
            &w(),
        )
        .unwrap();
    }
    s.delete(&pods(), "default", "p03", &DeleteOptions::default())
        .unwrap();
    inf.sync().unwrap();
    let want: Vec<String> = (0..20)
        .filter(|i| *i != 3)
        .map(|i| format!("p{i:02}"))
        .collect();
    assert_eq!(informer_names(&inf, &pods()), want);
    assert_eq!(
        inf.resource_version(),
        s.current_resource_version().unwrap()
    );
    // And it follows the feed again afterwards.
    s.create(&pods(), "default", pod("q", json!({})), &w())
        .unwrap();
    inf.sync().unwrap();
    assert_eq!(inf.list(&pods()).len(), 20);
}

#[test]
fn writes_after_lists_later_writes_in_order_until_compacted() {
    let (_d, s) = open();
    s.create(&pods(), "default", pod("a", json!({})), &w())
        .unwrap();
    let after = s.current_resource_version().unwrap();
    assert_eq!(s.writes_after(after).unwrap(), Some((after, vec![])));
    s.create(&pods(), "ns", pod("b", json!({"x": "y"})), &w())
        .unwrap();
    s.delete(&pods(), "default", "a", &DeleteOptions::default())
        .unwrap();
    let (head, writes) = s.writes_after(after).unwrap().unwrap();
    assert_eq!(head, s.current_resource_version().unwrap());
    let seen: Vec<(&str, &str, bool)> = writes
        .iter()
        .map(|w| (w.namespace.as_str(), w.name.as_str(), w.deleted))
        .collect();
    assert_eq!(seen, [("ns", "b", false), ("default", "a", true)]);
    assert_eq!(writes[0].resource, pods().key());
    assert!(writes[0].data.contains("\"x\":\"y\""), "{}", writes[0].data);
    // Compacted writes cannot be listed.
    s.compact(head).unwrap();
    assert_eq!(s.writes_after(after).unwrap(), None);
    assert_eq!(s.writes_after(head).unwrap(), Some((head, vec![])));
}

#[test]
fn writes_of_unsynced_resources_commit_without_a_disk_sync_and_others_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let events = Gvr::new("", "v1", "events");
    let options = || Options {
        unsynced: vec![events.clone()],
        ..Default::default()
    };
    let store = Store::open_with(dir.path(), options()).unwrap();
    // SQLite's `PRAGMA synchronous`: 1 is NORMAL (the WAL is not synced on commit), 2 FULL.
    let level = |s: &Store| {
        s.lock()
            .query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                       "reason": "Started"});
    store.create(&events, "default", event, &w()).unwrap();
    assert_eq!(level(&store), 1, "an event is committed without a sync");
    store
        .create(&pods(), "default", pod("a", json!({})), &w())
        .unwrap();
    assert_eq!(level(&store), 2, "a pod is committed with one");
    store
        .guaranteed_update(&events, "default", "e", &w(), |mut e| {
            e["reason"] = "Killing".into();
            Ok(e)
        })
        .unwrap();
    assert_eq!(level(&store), 1, "an event's update too");
    store
        .guaranteed_update(&pods(), "default", "a", &w(), |mut p| {
            p["metadata"]["labels"] = json!({"x": "y"});
            Ok(p)
        })
        .unwrap();
    assert_eq!(level(&store), 2);
    store
        .delete(&events, "default", "e", &DeleteOptions::default())
        .unwrap();
    assert_eq!(level(&store), 1, "and its delete");
    store
        .create(&events, "default", json!({"metadata": {"name": "f"}}), &w())
        .unwrap();
    drop(store);
    // Both kinds of writes are in the store when it is opened again.
    let store = Store::open_with(dir.path(), options()).unwrap();
    assert_eq!(
        store.get(&events, "default", "f").unwrap()["metadata"]["name"],
        "f"
    );
    assert!(matches!(
        store.get(&events, "default", "e"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.get(&pods(), "default", "a").unwrap()["metadata"]["labels"]["x"],
        "y"
    );
    // Without the option, events are synced like everything else.
    let (_d, plain) = open();
    plain
        .create(&events, "default", json!({"metadata": {"name": "g"}}), &w())
        .unwrap();
    assert_eq!(level(&plain), 2);
}
