//! Tests of own Dockerfiles: `FROM` rewriting, stages, the frame, and every refusal with
//! its place in the Dockerfile or the Gear.toml.

#![cfg(test)]

use crate::testing::{plan_of, problems_of, workspace};

const BASE: (&str, &str) = (
    "layers/base/Gear.toml",
    "[layer]\nname = \"base\"\nimage = \"nialljb/freesurfer-centos9:0.0.1\"\ndistro = \"centos\"\n",
);

fn gear(extra: &str) -> String {
    format!(
        "[gear]\nname = \"g\"\nfrom = \"base\"\nimage = \"x/g\"\nversion = \"1\"\nlabel = \"G\"\ndescription = \"G.\"\nauthor = \"A\"\nlicense = \"MIT\"\ndockerfile-file = \"Dockerfile\"\n{extra}"
    )
}

/// The rendered Dockerfile of gear `g` with this own Dockerfile, its first line dropped.
fn rendered(dockerfile: &str) -> String {
    let text = gear("");
    let root = workspace(&[
        BASE,
        ("gears/g/Gear.toml", &text),
        ("gears/g/Dockerfile", dockerfile),
        ("gears/g/run.py", ""),
    ]);
    let plan = plan_of(root.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let base = plan
        .get("base")
        .unwrap_or_else(|| panic!("no base"))
        .reference()
        .to_string();
    let built = plan
        .get("g")
        .and_then(|g| g.built())
        .map(|b| b.dockerfile.clone());
    let files: Vec<String> = plan
        .get("g")
        .and_then(|g| g.built())
        .map(|b| b.files.iter().map(|f| f.digest.tar_path.clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        files,
        ["run.py"],
        "the directory is the context, the Dockerfile aside"
    );
    let out = built.unwrap_or_default().replace(&base, "PARENT");
    out.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_parents_from_is_rewritten_in_every_stage_and_the_frame_appended() {
    let out = rendered(
        "# A multi-stage gear\nARG TAG=0.0.1\nFROM docker.io/nialljb/freesurfer-centos9:${TAG} AS build\nRUN make\nFROM python:3.12 AS tool\nFROM --platform=linux/amd64 nialljb/freesurfer-centos9\nCOPY --from=build /out /opt/out\nCOPY manifest.json /flywheel/v0/\nENTRYPOINT [\"python3\"]",
    );
    insta::assert_snapshot!(out, @r#"
    # A multi-stage gear
    ARG TAG=0.0.1
    FROM PARENT AS build
    RUN make
    FROM python:3.12 AS tool
    FROM --platform=linux/amd64 PARENT
    COPY --from=build /out /opt/out
    COPY manifest.json /flywheel/v0/
    ENTRYPOINT ["python3"]
    COPY .cargo-gear/manifest.json /flywheel/v0/manifest.json
    LABEL "org.cargo-gear.layer"="g" \
          "org.opencontainers.image.version"="1"
    "#);
}

#[test]
fn a_last_stage_through_an_alias_of_the_parent_builds_on_it() {
    let out = rendered("FROM nialljb/freesurfer-centos9:0.0.1 AS base\nFROM base\nRUN true\n");
    assert!(
        out.starts_with("FROM PARENT AS base\nFROM base\nRUN true\n"),
        "{out}"
    );
}

/// The problems of gear `g` with this Gear.toml tail and these files in its directory.
fn problems(extra: &str, files: &[(&str, &str)]) -> Vec<String> {
    let text = gear(extra);
    let mut all = vec![BASE, ("gears/g/Gear.toml", text.as_str())];
    all.extend_from_slice(files);
    let root = workspace(&all);
    problems_of(root.path())
}

#[test]
fn refusals_name_the_file_and_the_line() {
    let found = problems("", &[]);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("gear::dockerfile-file-missing: `dockerfile-file`: gears/g/Dockerfile does not exist [\"Dockerfile\"]"),
        "{found:?}"
    );
    let found = problems("", &[("gears/g/Dockerfile", "# nothing\nRUN true\n")]);
    assert!(
        found[0].starts_with("gear::dockerfile-no-from: gears/g/Dockerfile has no `FROM`"),
        "{found:?}"
    );
    let found = problems(
        "",
        &[(
            "gears/g/Dockerfile",
            "FROM nialljb/freesurfer-centos9\nCOPY --chmod=0755 run.py /x\nRUN <<EOF\ntrue\nEOF\nRUN --mount=type=cache,target=/c true\n",
        )],
    );
    assert_eq!(
        found,
        [
            "gear::buildkit-required: gears/g/Dockerfile line 2: `COPY --chmod` needs BuildKit, but cargo-gear builds with the engine's classic builder [COPY --chmod=0755 run.py /x\n] (write it without BuildKit syntax (e.g. `RUN chmod` after `COPY`, a script file instead of a heredoc), or use steps (`copy` takes `chmod`))",
            "gear::buildkit-required: gears/g/Dockerfile line 3: a heredoc (`<<EOF`) needs BuildKit, but cargo-gear builds with the engine's classic builder [RUN <<EOF\ntrue\nEOF\n] (write it without BuildKit syntax (e.g. `RUN chmod` after `COPY`, a script file instead of a heredoc), or use steps (`copy` takes `chmod`))",
            "gear::buildkit-required: gears/g/Dockerfile line 6: `RUN --mount` needs BuildKit, but cargo-gear builds with the engine's classic builder [RUN --mount=type=cache,target=/c true\n] (write it without BuildKit syntax (e.g. `RUN chmod` after `COPY`, a script file instead of a heredoc), or use steps (`copy` takes `chmod`))",
        ]
    );
    let found = problems(
        "",
        &[(
            "gears/g/Dockerfile",
            "FROM nialljb/freesurfer-centos9\nFROM python:3.12\n",
        )],
    );
    assert!(
        found[0].starts_with("gear::dockerfile-parent: the last stage of gears/g/Dockerfile does not build on `base` (image nialljb/freesurfer-centos9:0.0.1) [FROM python:3.12"),
        "{found:?}"
    );
    let found = problems("", &[("gears/g/Dockerfile", "ARG BASE\nFROM ${BASE}\n")]);
    assert!(
        found[0].starts_with("gear::dockerfile-from-arg: gears/g/Dockerfile line 2"),
        "{found:?}"
    );
    let found = problems(
        "packages = [\"jq\"]\n",
        &[("gears/g/Dockerfile", "FROM nialljb/freesurfer-centos9\n")],
    );
    assert!(
        found[0].starts_with(
            "gear::dockerfile-file-and-steps: `packages` cannot be used beside `dockerfile-file`"
        ),
        "{found:?}"
    );
}
