//! Engine tests: connection, version negotiation, inspect, pull errors, tag/list/remove.

use crate::support;

use std::time::{Duration, Instant};

use cargo_gear::engine::EngineError;

#[tokio::test]
async fn connects_and_negotiates_the_api_version_down() {
    let Some(engine) = support::engine().await else {
        return;
    };
    let server = engine.docker().version().await.unwrap();
    let server_api = server.api_version.unwrap();
    let parse = |v: &str| -> (u32, u32) {
        let (a, b) = v.split_once('.').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    // bollard speaks 1.49; an older engine (Debian's 20.10 speaks 1.41) gets its own version.
    assert_eq!(parse(engine.api_version()), parse(&server_api).min((1, 49)));
    assert_eq!(engine.server_version(), server.version.unwrap());
    assert!(
        engine.address().starts_with("unix://") || engine.address().starts_with("tcp://"),
        "{}",
        engine.address()
    );
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        assert_eq!(engine.address(), host.trim_end_matches('/'));
    }
}

#[tokio::test]
async fn inspects_images_and_missing_ones_are_none() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let info = engine.image(support::BUSYBOX).await.unwrap().unwrap();
    assert!(info.id.starts_with("sha256:"), "{}", info.id);
    assert!(
        info.repo_tags.iter().any(|t| t == support::BUSYBOX),
        "{:?}",
        info.repo_tags
    );
    assert!(info.size > 0);
    assert!(!info.created.is_empty());
    // By id too.
    assert_eq!(engine.image(&info.id).await.unwrap().unwrap().id, info.id);

    assert_eq!(
        engine
            .image("cargo-gear-test/does-not-exist:1")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn pulling_from_an_unreachable_registry_fails_fast_naming_the_image() {
    let Some(engine) = support::engine().await else {
        return;
    };
    let image = "127.0.0.1:9/cargo-gear-test/does-not-exist:1";
    let started = Instant::now();
    let mut events = Vec::new();
    let err = engine
        .pull(image, None, &mut |p| events.push(p.clone()))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    match &err {
        EngineError::Pull {
            image: named,
            message,
        } => {
            assert_eq!(named, image);
            assert!(message.contains("127.0.0.1:9"), "{message}");
        }
        other => panic!("expected EngineError::Pull, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("could not pull `{image}`: ")),
        "{err}"
    );
}

#[tokio::test]
async fn tags_lists_and_removes_images() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let busybox = engine.image(support::BUSYBOX).await.unwrap().unwrap();
    let reference = support::unique_tag("tagged");
    let (repo, tag) = reference.rsplit_once(':').unwrap();

    engine.tag(support::BUSYBOX, repo, tag).await.unwrap();
    let tagged = engine.image(&reference).await.unwrap().unwrap();
    assert_eq!(tagged.id, busybox.id);
    assert!(tagged.repo_tags.contains(&reference));

    let all = engine.list_images("").await.unwrap();
    let listed = all
        .iter()
        .find(|i| i.id == busybox.id)
        .expect("busybox is listed");
    assert!(
        listed.repo_tags.contains(&reference)
            && listed.repo_tags.iter().any(|t| t == support::BUSYBOX)
    );
    assert!(listed.size > 0 && listed.created > 0);

    // Removing one of two tags only untags.
    assert!(engine.remove_image(&reference, false).await.unwrap());
    assert_eq!(engine.image(&reference).await.unwrap(), None);
    assert!(engine.image(support::BUSYBOX).await.unwrap().is_some());
    assert!(!engine.remove_image(&reference, false).await.unwrap());

    let err = engine
        .tag("cargo-gear-test/does-not-exist:1", repo, tag)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NoImage { .. }), "{err:?}");
}
