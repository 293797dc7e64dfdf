//! Engine tests: classic-builder builds with a streamed, deterministic context.

use crate::support;

use std::collections::HashMap;

use cargo_gear::engine::{BuildError, BuildRequest, TAR_MTIME, TarEntry};

const DOCKERFILE: &str = ".cargo-gear/Dockerfile";

fn request(dockerfile: &str, mut context: Vec<TarEntry>, tags: Vec<String>) -> BuildRequest {
    context.push(TarEntry::bytes(DOCKERFILE, dockerfile));
    BuildRequest {
        context,
        dockerfile: DOCKERFILE.into(),
        tags,
        labels: HashMap::from([(support::TEST_LABEL.to_owned(), "engine-build".to_owned())]),
        build_args: HashMap::new(),
        journal: None,
        no_cache: false,
        platform: None,
    }
}

#[tokio::test]
async fn builds_a_tagged_labelled_image_from_files_and_bytes() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello from the context\n").unwrap();
    std::fs::write(dir.path().join("run.sh"), "#!/bin/sh\necho run\n").unwrap();

    let dockerfile = format!(
        "FROM {}\nARG GREETING\nCOPY hello.txt /hello.txt\nCOPY bin/ /opt/bin/\n\
         RUN echo \"greeting=$GREETING\" && cat /hello.txt && test -x /opt/bin/run.sh\n",
        support::BUSYBOX
    );
    let tags = vec![
        support::unique_tag("built"),
        support::unique_tag("built-too"),
    ];
    let run_label = support::unique("run");
    let mut req = request(
        &dockerfile,
        vec![
            TarEntry::file("hello.txt", dir.path().join("hello.txt")),
            TarEntry::file("bin/run.sh", dir.path().join("run.sh")).executable(),
        ],
        tags.clone(),
    );
    req.labels
        .insert("cargo-gear.test-run".into(), run_label.clone());
    // A new value each run: build args used by RUN are part of its cache key, and a cached
    // step prints nothing.
    let greeting = format!("hi {run_label}");
    req.build_args.insert("GREETING".into(), greeting.clone());

    let mut lines = Vec::new();
    let output = engine
        .build(req, &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap_or_else(|e| {
            panic!("{:?}\n{}", miette::Report::new(e), lines.join("\n"));
        });
    assert!(
        output.image_id.starts_with("sha256:"),
        "{}",
        output.image_id
    );
    let log = lines.join("\n");
    // The labels are steps of their own after the Dockerfile's.
    assert!(
        lines[0].starts_with("Step 1/")
            && lines[0].ends_with(" : FROM cargo-gear-fixture/busybox:1"),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| *l == format!("greeting={greeting}")),
        "{log}"
    );
    assert!(lines.iter().any(|l| l == "hello from the context"), "{log}");

    let info = engine
        .image(&tags[0])
        .await
        .unwrap()
        .expect("the first tag exists");
    assert_eq!(info.id, output.image_id);
    assert_eq!(
        info.labels.get(support::TEST_LABEL).map(String::as_str),
        Some("engine-build")
    );
    assert_eq!(info.labels.get("cargo-gear.test-run"), Some(&run_label));
    for tag in &tags {
        assert!(
            info.repo_tags.contains(tag),
            "{tag} not in {:?}",
            info.repo_tags
        );
    }
    let listed = engine
        .list_images(&format!("cargo-gear.test-run={run_label}"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, output.image_id);

    // The archive's normalized metadata is what the image's files get.
    let (code, stat) = support::sh(
        &engine,
        &tags[0],
        "stat -c '%Y %u %a' /hello.txt /opt/bin/run.sh",
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(stat, format!("{TAR_MTIME} 0 644\n{TAR_MTIME} 0 755\n"));

    for tag in &tags {
        assert!(engine.remove_image(tag, false).await.unwrap());
    }
}

#[tokio::test]
async fn a_failing_run_step_reports_the_step_and_the_engines_message() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    // Unique so that the step is not cached and prints its output.
    let before = format!("before the failure {}", support::unique("run"));
    let dockerfile = format!(
        "FROM {}\nRUN echo {before}\nRUN false\nRUN echo never\n",
        support::BUSYBOX
    );
    let req = request(&dockerfile, vec![], vec![support::unique_tag("fails")]);
    let mut lines = Vec::new();
    let err = engine
        .build(req, &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap_err();
    match &err {
        BuildError::Step {
            step,
            message,
            tail,
        } => {
            // Four Dockerfile instructions and the label.
            assert_eq!(step, "Step 3/5 : RUN false");
            assert_eq!(
                message,
                "The command '/bin/sh -c false' returned a non-zero code: 1"
            );
            assert!(tail.contains(&before), "{tail:?}");
            assert_eq!(tail.last(), lines.last());
            assert!(tail.len() <= 20);
        }
        other => panic!("expected BuildError::Step, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "build failed at `Step 3/5 : RUN false`: The command '/bin/sh -c false' returned a non-zero code: 1"
    );
    assert!(!lines.iter().any(|l| l == "never"));
}

#[tokio::test]
async fn a_missing_dockerfile_is_rejected_with_the_engines_message() {
    let Some(engine) = support::engine().await else {
        return;
    };
    let mut req = request("FROM scratch\n", vec![], vec![]);
    req.dockerfile = "nowhere/Dockerfile".into();
    let err = engine.build(req, &mut |_| {}).await.unwrap_err();
    match &err {
        BuildError::Failed { message, .. } => {
            assert!(message.contains("nowhere/Dockerfile"), "{message}");
        }
        other => panic!("expected BuildError::Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreadable_context_file_aborts_the_build_naming_the_file() {
    let Some(engine) = support::engine().await else {
        return;
    };
    let dockerfile = format!("FROM {}\nCOPY . /ctx/\n", support::BUSYBOX);
    let tag = support::unique_tag("aborted");
    let req = request(
        &dockerfile,
        vec![TarEntry::file(
            "zz/missing.bin",
            "/nonexistent/cargo-gear/missing.bin",
        )],
        vec![tag.clone()],
    );
    let err = engine.build(req, &mut |_| {}).await.unwrap_err();
    match &err {
        BuildError::Context(e) => assert_eq!(
            e.to_string(),
            "could not read `/nonexistent/cargo-gear/missing.bin` for build context entry `zz/missing.bin`"
        ),
        other => panic!("expected BuildError::Context, got {other:?}"),
    }
    // The truncated context must not have produced an image.
    assert_eq!(engine.image(&tag).await.unwrap(), None);
}

#[tokio::test]
async fn a_context_larger_than_the_stream_buffers_arrives_whole() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let dir = tempfile::tempdir().unwrap();
    // 24 MiB over several files: many body chunks, several times what the channel holds.
    let mut context = Vec::new();
    let mut total = 0usize;
    for i in 0..6 {
        let path = dir.path().join(format!("blob{i}"));
        let size = 4 * 1024 * 1024 + i * 4099;
        let data: Vec<u8> = (0..size).map(|j| (j * 31 + i) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        total += size;
        context.push(TarEntry::file(format!("blobs/blob{i}"), path));
    }
    let dockerfile = format!(
        "FROM {}\nCOPY blobs/ /blobs/\nRUN test \"$(cat /blobs/* | wc -c)\" -eq {total}\n",
        support::BUSYBOX
    );
    let tag = support::unique_tag("large");
    let req = request(&dockerfile, context, vec![tag.clone()]);
    let mut lines = Vec::new();
    engine
        .build(req, &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{:?}\n{}", miette::Report::new(e), lines.join("\n")));
    assert!(engine.remove_image(&tag, false).await.unwrap());
}
