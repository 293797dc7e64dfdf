//! Engine tests: running containers (`cargo gear run`).

use crate::support;

use std::time::Duration;

use cargo_gear::engine::{EngineError, RunSpec, StdStream};

fn busybox(script: &str) -> RunSpec {
    RunSpec {
        image: support::BUSYBOX.into(),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        auto_remove: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn returns_the_exit_code_and_the_output_of_each_stream() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let name = support::unique("cargo-gear-test-exit");
    let spec = RunSpec {
        name: Some(name.clone()),
        ..busybox("echo out; echo err >&2; echo more; exit 3")
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = engine
        .run_container(spec, &mut |stream, bytes| match stream {
            StdStream::Stdout => stdout.extend_from_slice(bytes),
            StdStream::Stderr => stderr.extend_from_slice(bytes),
        })
        .await
        .unwrap();
    assert_eq!(code, 3);
    assert_eq!(String::from_utf8(stdout).unwrap(), "out\nmore\n");
    assert_eq!(String::from_utf8(stderr).unwrap(), "err\n");
    // auto_remove: gone.
    assert!(!engine.remove_container(&name, true).await.unwrap());
}

#[tokio::test]
async fn env_workdir_user_binds_and_entrypoint_apply() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.txt"), "from the host\n").unwrap();
    let spec = RunSpec {
        image: support::BUSYBOX.into(),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        cmd: Some(vec![
            "echo $GREETING; pwd; id -u; cat /data/input.txt; touch /data/x 2>/dev/null || echo ro"
                .into(),
        ]),
        env: vec!["GREETING=hello".into()],
        workdir: Some("/tmp".into()),
        user: Some("1234:1234".into()),
        binds: vec![format!("{}:/data:ro", dir.path().display())],
        auto_remove: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    let code = engine
        .run_container(spec, &mut |_, b| out.extend_from_slice(b))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "hello\n/tmp\n1234\nfrom the host\nro\n"
    );
    assert_eq!(code, 0);
}

#[tokio::test]
async fn a_kept_container_stays_until_removed() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let name = support::unique("cargo-gear-test-keep");
    let spec = RunSpec {
        name: Some(name.clone()),
        auto_remove: false,
        ..busybox("true")
    };
    assert_eq!(engine.run_container(spec, &mut |_, _| {}).await.unwrap(), 0);
    let inspect = engine
        .docker()
        .inspect_container(
            &name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    assert_eq!(inspect.state.and_then(|s| s.exit_code), Some(0));
    assert!(engine.remove_container(&name, false).await.unwrap());
    assert!(!engine.remove_container(&name, false).await.unwrap());
}

#[tokio::test]
async fn a_named_container_can_be_killed_while_it_runs() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let name = support::unique("cargo-gear-test-kill");
    let spec = RunSpec {
        name: Some(name.clone()),
        ..busybox("echo started; exec sleep 60")
    };
    let mut out = Vec::new();
    let mut collect = |_: StdStream, b: &[u8]| out.extend_from_slice(b);
    let run = engine.run_container(spec, &mut collect);
    let kill = async {
        // As a Ctrl-C handler would: kill by name once the container runs.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if engine.kill_container(&name, None).await.is_ok() {
                return;
            }
        }
        panic!("the container never ran");
    };
    let (code, ()) =
        tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(run, kill) })
            .await
            .expect("the killed container ends");
    assert_eq!(code.unwrap(), 137);
    assert_eq!(String::from_utf8(out).unwrap(), "started\n");
    assert!(!engine.remove_container(&name, true).await.unwrap());
}

#[tokio::test]
async fn a_missing_image_or_command_is_an_error() {
    let Some(engine) = support::engine().await else {
        return;
    };
    let spec = RunSpec {
        image: "cargo-gear-test/does-not-exist:1".into(),
        ..Default::default()
    };
    let err = engine
        .run_container(spec, &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::NoImage { image, .. } if image == "cargo-gear-test/does-not-exist:1"),
        "{err:?}"
    );

    support::require_fixture(&engine, support::BUSYBOX).await;
    let name = support::unique("cargo-gear-test-nocmd");
    let spec = RunSpec {
        image: support::BUSYBOX.into(),
        cmd: Some(vec!["/no/such/program".into()]),
        auto_remove: true,
        name: Some(name.clone()),
        ..Default::default()
    };
    let err = engine
        .run_container(spec, &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("could not start container `{name}`")),
        "{err}"
    );
    // auto_remove also cleans up a container that never started.
    assert!(!engine.remove_container(&name, true).await.unwrap());
}

#[tokio::test]
async fn standard_input_reaches_the_container_and_output_follows_its_end() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let spec = RunSpec {
        image: support::BUSYBOX.into(),
        cmd: Some(vec!["sh".into()]),
        auto_remove: true,
        ..Default::default()
    };
    // The shell reads the script to its end (stdin closes), then keeps writing.
    let script = b"echo hi; read -r line || echo eof; sleep 0.3; echo done >&2; exit 4\n".to_vec();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = engine
        .run_interactive(
            spec,
            Box::new(std::io::Cursor::new(script)),
            &mut |s, b| match s {
                StdStream::Stdout => stdout.extend_from_slice(b),
                StdStream::Stderr => stderr.extend_from_slice(b),
            },
        )
        .await
        .unwrap();
    assert_eq!(code, 4);
    assert_eq!(String::from_utf8(stdout).unwrap(), "hi\neof\n");
    assert_eq!(String::from_utf8(stderr).unwrap(), "done\n");
}

#[tokio::test]
async fn with_a_terminal_everything_arrives_as_stdout() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let spec = RunSpec {
        tty: true,
        ..busybox("echo out; echo err >&2; exit 2")
    };
    let mut chunks = Vec::new();
    let code = engine
        .run_container(spec, &mut |s, b| chunks.push((s, b.to_vec())))
        .await
        .unwrap();
    assert_eq!(code, 2);
    assert!(chunks.iter().all(|(s, _)| *s == StdStream::Stdout));
    let text: Vec<u8> = chunks.into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(String::from_utf8(text).unwrap(), "out\r\nerr\r\n");
}
