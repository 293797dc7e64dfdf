//! Unit tests of the per-layer checks: one Gear.toml text per rule, the problem it yields.

#![cfg(test)]

use super::*;
use crate::layer::GEAR_TOML;

fn load(text: &str) -> Layer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(GEAR_TOML), text).unwrap();
    Layer::load(dir.path(), dir.path()).unwrap_or_else(|p| panic!("{p}"))
}

/// A valid gear; tests append keys to its `[gear]` table or add sub-tables.
const GEAR: &str = r#"[gear]
name = "g"
from = "base"
image = "lab/g"
version = "1.0.0"
label = "G"
description = "Does g."
author = "A"
license = "MIT"
"#;

fn gear(extra: &str) -> String {
    format!("{GEAR}{extra}")
}

/// The text a problem's span covers.
fn spanned<'a>(layer: &'a Layer, p: &Problem) -> &'a str {
    let span = p.span.unwrap_or_else(|| panic!("no span: {p:?}"));
    &layer.source.text()[span.offset()..][..span.len()]
}

/// Checks `text` and expects exactly one problem: returns it and the text it points at.
fn one(text: &str) -> (Problem, String) {
    let layer = load(text);
    let mut problems = check_layer(&layer);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problems.remove(0);
    assert!(p.label.is_some() && p.help.is_some(), "{p:?}");
    let at = spanned(&layer, &p).to_string();
    (p, at)
}

fn all(text: &str) -> (Layer, Vec<Problem>) {
    let layer = load(text);
    let problems = check_layer(&layer);
    (layer, problems)
}

#[test]
fn valid_layers_and_gear_pass() {
    for text in [
        GEAR,
        "[layer]\nname = \"base\"\nimage = \"python:3.12-slim\"\ndigest = \"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\ndistro = \"debian\"\ndescription = \"x\"\n",
        "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"localhost:5000/lab/mid\"\npackages = [\"jq\"]\n",
    ] {
        let (_, problems) = all(text);
        assert!(problems.is_empty(), "{text}\n{problems:#?}");
    }
}

#[test]
fn gear_name_pattern() {
    let (p, at) = one(&GEAR.replace("name = \"g\"", "name = \"GRP_14\""));
    assert_eq!(p.code, "gear::invalid-name");
    assert_eq!(
        p.message,
        "gear name `GRP_14` is not allowed: Flywheel gear names must match `^[a-z0-9-]+$`"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("use only lowercase letters (a-z), digits and `-`, e.g. `name = \"grp-14\"`")
    );
    assert_eq!(at, "\"GRP_14\"");
}

#[test]
fn layer_name_pattern_says_why() {
    let (p, at) = one("[layer]\nname = \"My Base!\"\nimage = \"x:1\"\n");
    assert_eq!(p.code, "gear::invalid-name");
    assert!(
        p.message
            .starts_with("layer name `My Base!` is not allowed: layer names become image names"),
        "{}",
        p.message
    );
    assert!(p.help.unwrap().ends_with("e.g. `name = \"my-base\"`"));
    assert_eq!(at, "\"My Base!\"");
}

#[test]
fn name_too_long() {
    let long = "a".repeat(101);
    let (p, at) = one(&GEAR.replace("name = \"g\"", &format!("name = \"{long}\"")));
    assert_eq!(p.code, "gear::invalid-name");
    assert_eq!(
        p.message,
        "gear name is 101 characters long; at most 100 are allowed"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("shorten the name to at most 100 characters")
    );
    assert_eq!(at, format!("\"{long}\""));
    assert!(
        all(&GEAR.replace("name = \"g\"", &format!("name = \"{}\"", "a".repeat(100))))
            .1
            .is_empty()
    );
}

#[test]
fn gear_only_keys_in_layer() {
    let (layer, ps) = all(
        "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"x/mid\"\nversion = \"1\"\nrun-file = \"run\"\n\n[layer.config.n]\ntype = \"integer\"\n",
    );
    let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
    assert_eq!(codes, ["gear::gear-only-key"; 3]);
    assert_eq!(ps[0].message, "`version` is only for gears");
    assert_eq!(
        ps[0].help.as_deref(),
        Some(
            "rename [layer] to [gear] to make `mid` a Flywheel gear (gears are built `from` a layer), or remove `version`"
        )
    );
    let at: Vec<&str> = ps.iter().map(|p| spanned(&layer, p)).collect();
    assert_eq!(at, ["version", "run-file", "config"]);
}

#[test]
fn external_layer_with_build_keys() {
    let (layer, ps) = all(
        "[layer]\nname = \"base\"\nimage = \"python:3\"\npackages = [\"jq\"]\nenv = { A = \"1\" }\ndistro = \"debian\"\nlabel = \"L\"\n",
    );
    let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        [
            "gear::external-build-key",
            "gear::external-build-key",
            "gear::gear-only-key"
        ]
    );
    assert_eq!(
        ps[0].message,
        "`packages` needs a build, but `base` is an external image (a [layer] without `from`)"
    );
    assert_eq!(
        ps[0].help.as_deref(),
        Some(
            "an external image is pulled, not built: move these keys to a layer built `from = \"base\"`, or add `from = …`"
        )
    );
    let at: Vec<&str> = ps.iter().map(|p| spanned(&layer, p)).collect();
    assert_eq!(at, ["packages", "env", "label"]);
}

#[test]
fn gear_without_from() {
    let (p, at) = one(&GEAR.replace("from = \"base\"\n", ""));
    assert_eq!(p.code, "gear::gear-without-from");
    assert_eq!(p.message, "gear `g` has no `from`");
    assert!(
        p.help
            .unwrap()
            .starts_with("add `from = \"<layer name>\"` to [gear]")
    );
    assert_eq!(at, "gear");
}

#[test]
fn digest_on_built_layer_and_gear() {
    let (p, at) =
        one("[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"x/mid\"\ndigest = \"sha256:0\"\n");
    assert_eq!(p.code, "gear::digest-on-built-layer");
    assert_eq!(
        p.message,
        "`digest` pins an external image, but `mid` is built by cargo-gear"
    );
    assert!(p.help.unwrap().starts_with("remove `digest`"));
    assert_eq!(at, "digest");
    let (p, at) = one(&gear("digest = \"sha256:0\"\n"));
    assert_eq!(p.code, "gear::digest-on-built-layer");
    assert_eq!(at, "digest");
}

#[test]
fn built_image_with_tag_or_digest() {
    let (p, at) = one(&GEAR.replace("image = \"lab/g\"", "image = \"lab/g:1.0.0\""));
    assert_eq!(p.code, "gear::image-has-tag");
    assert_eq!(p.message, "built image `lab/g:1.0.0` has a tag");
    assert_eq!(
        p.help.as_deref(),
        Some(
            "remove the tag: `image = \"lab/g\"`; cargo-gear tags the images it builds (a gear's tag is its `version`)"
        )
    );
    assert_eq!(at, "\"lab/g:1.0.0\"");

    let (p, _) = one(
        "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"localhost:5000/x/mid:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n",
    );
    assert_eq!(
        p.message,
        "built image `localhost:5000/x/mid:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef` has a digest"
    );
    assert!(
        p.help
            .unwrap()
            .starts_with("remove the digest: `image = \"localhost:5000/x/mid\"`")
    );

    // A registry port is not a tag; external images may be tagged.
    assert!(
        all("[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"localhost:5000/x/mid\"\n")
            .1
            .is_empty()
    );
    assert!(
        all("[layer]\nname = \"base\"\nimage = \"localhost:5000/x/base:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n")
            .1
            .is_empty()
    );
}

#[test]
fn image_references_as_docker_parses_them() {
    let (p, at) = one(&GEAR.replace("image = \"lab/g\"", "image = \"Newcomer/Word Count\""));
    assert_eq!(p.code, "gear::invalid-image");
    assert_eq!(
        p.message,
        "`image = \"Newcomer/Word Count\"` is not a valid Docker image reference: a space is not allowed here: a repository path is lowercase letters and digits, joined by `.`, `_`, `__` or dashes, components separated by `/`"
    );
    assert!(
        p.help
            .unwrap()
            .starts_with("write a Docker image reference, e.g. `image = \"newcomer/word-count\"`")
    );
    assert_eq!(at, "\"Newcomer/Word Count\"");
    let (p, _) = one("[layer]\nname = \"base\"\nimage = \"Python:3\"\n");
    assert!(
        p.message.ends_with("repository names must be lowercase"),
        "{p:?}"
    );
    let (p, at) = one("[layer]\nname = \"base\"\nimage = \"python:3\"\ndigest = \"sha256:abc\"\n");
    assert_eq!(p.code, "gear::invalid-digest");
    assert_eq!(at, "\"sha256:abc\"");
    // A registry host may have capitals and a port; external images may be tagged.
    assert!(
        all("[layer]\nname = \"base\"\nimage = \"Reg.example.org:5000/lab/x:1\"\n")
            .1
            .is_empty()
    );
}

#[test]
fn missing_manifest_fields_all_reported() {
    let (layer, ps) = all("[gear]\nname = \"g\"\nfrom = \"b\"\nimage = \"x/g\"\nauthor = \" \"\n");
    let msgs: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "gear `g` has no `version`",
            "gear `g` has no `label`",
            "gear `g` has no `description`",
            "gear `g` has no `license`",
            "`author` of gear `g` is empty"
        ]
    );
    assert!(ps.iter().all(|p| p.code == "gear::missing-manifest-field"));
    assert_eq!(
        ps[0].help.as_deref(),
        Some("add `version = \"1.0.0\"` to [gear]: Flywheel requires `version` in manifest.json")
    );
    assert_eq!(
        ps[1].help.as_deref(),
        Some("add `label = \"…\"` to [gear]: Flywheel requires `label` in manifest.json")
    );
    assert_eq!(spanned(&layer, &ps[0]), "gear");
    assert_eq!(spanned(&layer, &ps[4]), "\" \"");
}

#[test]
fn version_must_be_a_docker_tag() {
    let (p, at) = one(&GEAR.replace("version = \"1.0.0\"", "version = \"1.0.0+build 5\""));
    assert_eq!(p.code, "gear::invalid-version");
    assert_eq!(
        p.message,
        "version `1.0.0+build 5` cannot be a Docker image tag, and the gear's image is tagged with its version"
    );
    assert_eq!(
        p.help.as_deref(),
        Some(
            "use only letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, e.g. `version = \"1.0.0-build-5\"`"
        )
    );
    assert_eq!(at, "\"1.0.0+build 5\"");
    let (p, _) = one(&GEAR.replace("version = \"1.0.0\"", "version = \".1\""));
    assert_eq!(p.code, "gear::invalid-version");
    let (p, _) = one(&GEAR.replace("version = \"1.0.0\"", "version = \"\""));
    assert_eq!(p.code, "gear::invalid-version");
    assert!(p.help.unwrap().ends_with("e.g. `version = \"1.0.0\"`"));
    assert!(
        all(&GEAR.replace("version = \"1.0.0\"", "version = \"v1.2_rc-3.X\""))
            .1
            .is_empty()
    );
}

#[test]
fn flywheel_max_lengths() {
    let label = "L".repeat(101);
    let (p, at) = one(&GEAR.replace("label = \"G\"", &format!("label = \"{label}\"")));
    assert_eq!(p.code, "gear::too-long");
    assert_eq!(
        p.message,
        "`label` is 101 characters long; Flywheel allows at most 100"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("shorten `label` to at most 100 characters (the description can say more)")
    );
    assert_eq!(at, format!("\"{label}\""));

    // Characters, not bytes: 100 × "é" is fine.
    assert!(
        all(&GEAR.replace("label = \"G\"", &format!("label = \"{}\"", "é".repeat(100))))
            .1
            .is_empty()
    );

    let (_, ps) = all(&gear(&format!(
        "maintainer = \"{}\"\ncite = \"{}\"\n",
        "m".repeat(101),
        "c".repeat(5001)
    ))
    .replace(
        "description = \"Does g.\"",
        &format!("description = \"{}\"", "d".repeat(5001)),
    )
    .replace(
        "author = \"A\"",
        &format!("author = \"{}\"", "a".repeat(101)),
    ));
    let msgs: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "`description` is 5001 characters long; Flywheel allows at most 5000",
            "`author` is 101 characters long; Flywheel allows at most 100",
            "`maintainer` is 101 characters long; Flywheel allows at most 100",
            "`cite` is 5001 characters long; Flywheel allows at most 5000",
        ]
    );
}

#[test]
fn license_suggestions() {
    for (written, suggested) in [
        ("mit", "MIT"),
        ("apache-2.0", "Apache-2.0"),
        ("other", "Other"),
    ] {
        let (p, at) = one(&GEAR.replace("license = \"MIT\"", &format!("license = \"{written}\"")));
        assert_eq!(p.code, "gear::unknown-license");
        assert_eq!(
            p.message,
            format!("license `{written}` is not one Flywheel accepts")
        );
        assert_eq!(
            p.help.unwrap(),
            format!(
                "did you mean `{suggested}`? License identifiers are case-sensitive: `license = \"{suggested}\"`"
            )
        );
        assert_eq!(at, format!("\"{written}\""));
    }
    let (p, _) = one(&GEAR.replace("license = \"MIT\"", "license = \"GPL-3.0-or-later\""));
    assert_eq!(
        p.help.as_deref(),
        Some("did you mean `GPL-3.0`? (`license = \"GPL-3.0\"`)")
    );
    let (p, _) = one(&GEAR.replace("license = \"MIT\"", "license = \"proprietary\""));
    assert!(
        p.help
            .unwrap()
            .starts_with("use an SPDX identifier from Flywheel's list")
    );
}

#[test]
fn licenses_are_the_schema_enum() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/flywheel/manifest.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let licenses: Vec<&str> = schema["properties"]["license"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(licenses, FLYWHEEL_LICENSES);
    for (field, max) in [
        ("label", 100),
        ("description", 5000),
        ("author", 100),
        ("maintainer", 100),
        ("cite", 5000),
        ("version", 100),
        ("name", MAX_NAME_LEN),
    ] {
        assert_eq!(schema["properties"][field]["maxLength"], max, "{field}");
    }
    assert_eq!(schema["definitions"]["uriOrEmpty"]["maxLength"], 1000);
}

#[test]
fn urls_must_be_http() {
    let (layer, ps) = all(&gear(
        "source = \"https://github.com/BBillot/SynthSeg \"\nurl = \"github.com/lab/g\"\n",
    ));
    assert!(ps.iter().all(|p| p.code == "gear::invalid-url"), "{ps:#?}");
    assert_eq!(ps[0].message, "`source` has leading or trailing whitespace");
    assert_eq!(
        ps[0].help.as_deref(),
        Some("remove the whitespace: `source = \"https://github.com/BBillot/SynthSeg\"`")
    );
    assert_eq!(
        spanned(&layer, &ps[0]),
        "\"https://github.com/BBillot/SynthSeg \""
    );
    assert_eq!(
        ps[1].message,
        "`url` `github.com/lab/g` is not an http(s) URL"
    );
    assert_eq!(
        ps[1].help.as_deref(),
        Some("add the scheme: `url = \"https://github.com/lab/g\"`")
    );

    let (_, ps) = all(&gear("source = \"  \"\nurl = \"ftp://x/y\"\n"));
    assert_eq!(ps[0].message, "`source` holds only whitespace");
    assert_eq!(
        ps[0].help.as_deref(),
        Some("write `source = \"\"` (no source, as when it is not set) or an http(s) URL")
    );
    assert_eq!(ps[1].message, "`url` `ftp://x/y` is not an http(s) URL");
    assert!(
        ps[1]
            .help
            .as_deref()
            .unwrap()
            .starts_with("set `url` to a full http:// or https:// address")
    );
    let (_, ps) = all(&gear("url = \"https://example.org/a b\"\n"));
    assert_eq!(ps.len(), 1);

    assert!(
        all(&gear(
            "source = \"http://localhost:8080/x?y=1#z\"\nurl = \"https://example.org\"\n"
        ))
        .1
        .is_empty()
    );
    // Empty strings mean "none", as Flywheel's schema allows, like an empty `cite`.
    assert!(
        all(&gear("source = \"\"\nurl = \"\"\ncite = \"\"\n"))
            .1
            .is_empty()
    );
}

#[test]
fn config_default_and_optional() {
    let (p, at) = one(&gear(
        "[gear.config.n]\ntype = \"integer\"\ndefault = 1\noptional = false\n",
    ));
    assert_eq!(p.code, "gear::config-default-and-optional");
    assert_eq!(p.message, "config `n` has both `default` and `optional`");
    assert!(p.help.unwrap().starts_with("remove `optional`"));
    assert_eq!(at, "optional");
}

#[test]
fn config_default_type() {
    let cases = [
        (
            "integer",
            "3.0",
            "`default` of config `c` is a float, but its `type` is integer",
            "write it without a decimal point: `default = 3`",
        ),
        (
            "integer",
            "\"3\"",
            "`default` of config `c` is a string, but its `type` is integer",
            "remove the quotes: `default = 3`",
        ),
        (
            "number",
            "\"0.5\"",
            "`default` of config `c` is a string, but its `type` is number",
            "remove the quotes: `default = 0.5`",
        ),
        (
            "boolean",
            "\"true\"",
            "`default` of config `c` is a string, but its `type` is boolean",
            "remove the quotes: `default = true`",
        ),
        (
            "string",
            "3",
            "`default` of config `c` is an integer, but its `type` is string",
            "quote it: `default = \"3\"`",
        ),
        (
            "array",
            "\"x\"",
            "`default` of config `c` is a string, but its `type` is array",
            "make it a list: `default = [\"x\"]`",
        ),
        (
            "boolean",
            "1",
            "`default` of config `c` is an integer, but its `type` is boolean",
            "give `default` a boolean value, or change `type`",
        ),
    ];
    for (ty, default, message, help) in cases {
        let (p, at) = one(&gear(&format!(
            "[gear.config.c]\ntype = \"{ty}\"\ndefault = {default}\n"
        )));
        assert_eq!(p.code, "gear::config-default-type");
        assert_eq!(p.message, message);
        assert_eq!(p.help.as_deref(), Some(help));
        assert_eq!(at, default);
    }
    for (ty, default) in [
        ("integer", "-3"),
        ("number", "3"),
        ("number", "0.25"),
        ("boolean", "false"),
        ("string", "\"\""),
        ("array", "[1, \"a\"]"),
    ] {
        assert!(
            all(&gear(&format!(
                "[gear.config.c]\ntype = \"{ty}\"\ndefault = {default}\n"
            )))
            .1
            .is_empty(),
            "{ty} {default}"
        );
    }
}

#[test]
fn config_default_enum() {
    let (p, at) = one(&gear(
        "[gear.config.d]\ntype = \"string\"\ndefault = \"autorecn1\"\nenum = [\"all\", \"autorecon1\", \"autorecon2\"]\n",
    ));
    assert_eq!(p.code, "gear::config-default-enum");
    assert_eq!(
        p.message,
        "`default` \"autorecn1\" of config `d` is not one of its `enum` values"
    );
    assert_eq!(
        p.help.as_deref(),
        Some(
            "did you mean `default = \"autorecon1\"`? (allowed: \"all\", \"autorecon1\", \"autorecon2\")"
        )
    );
    assert_eq!(at, "\"autorecn1\"");
    let (p, _) = one(&gear(
        "[gear.config.n]\ntype = \"integer\"\ndefault = 3\nenum = [1, 2]\n",
    ));
    assert_eq!(
        p.help.as_deref(),
        Some("set `default` to one of the `enum` values (1, 2), or add it to `enum`")
    );
    assert!(
        all(&gear(
            "[gear.config.x]\ntype = \"number\"\ndefault = 1\nenum = [1.0, 2.5]\n"
        ))
        .1
        .is_empty()
    );
}

#[test]
fn config_enum_values_of_wrong_type() {
    let (layer, ps) = all(&gear(
        "[gear.config.n]\ntype = \"integer\"\nenum = [1, \"two\", 3.5]\n",
    ));
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert!(ps.iter().all(|p| p.code == "gear::config-enum-type"));
    assert_eq!(
        ps[0].message,
        "`enum` value \"two\" of config `n` is a string, not an integer"
    );
    assert_eq!(
        ps[0].help.as_deref(),
        Some("make every `enum` value an integer (the config's `type`), or change `type`")
    );
    assert_eq!(spanned(&layer, &ps[0]), "\"two\"");
    assert_eq!(spanned(&layer, &ps[1]), "3.5");
}

#[test]
fn config_default_range() {
    let (p, at) = one(&gear(
        "[gear.config.t]\ntype = \"integer\"\ndefault = 0\nminimum = 1\nmaximum = 64\n",
    ));
    assert_eq!(p.code, "gear::config-default-range");
    assert_eq!(
        p.message,
        "`default` 0 of config `t` is below its `minimum` 1"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("change `default` to a value in the allowed range, or change `minimum`")
    );
    assert_eq!(at, "0");
    let (p, _) = one(&gear(
        "[gear.config.r]\ntype = \"number\"\ndefault = 1.0\nexclusiveMaximum = 1\n",
    ));
    assert_eq!(
        p.message,
        "`default` 1.0 of config `r` is not below its `exclusiveMaximum` 1"
    );
    let (p, _) = one(&gear(
        "[gear.config.r]\ntype = \"number\"\ndefault = 0\nexclusiveMinimum = 0\n",
    ));
    assert_eq!(
        p.message,
        "`default` 0 of config `r` is not above its `exclusiveMinimum` 0"
    );
    let (p, _) = one(&gear(
        "[gear.config.r]\ntype = \"number\"\ndefault = 2.5\nmaximum = 2\n",
    ));
    assert_eq!(
        p.message,
        "`default` 2.5 of config `r` is above its `maximum` 2"
    );
    assert!(
        all(&gear(
            "[gear.config.t]\ntype = \"integer\"\ndefault = 64\nminimum = 1\nmaximum = 64\n"
        ))
        .1
        .is_empty()
    );
}

#[test]
fn config_pattern() {
    let (p, at) = one(&gear(
        "[gear.config.s]\ntype = \"string\"\ndefault = \"-bad\"\npattern = \"^[A-Za-z0-9][A-Za-z0-9._-]*$\"\n",
    ));
    assert_eq!(p.code, "gear::config-default-pattern");
    assert_eq!(
        p.message,
        "`default` \"-bad\" of config `s` does not match its `pattern` `^[A-Za-z0-9][A-Za-z0-9._-]*$`"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("change `default` so that it matches `pattern`, or fix `pattern`")
    );
    assert_eq!(at, "\"-bad\"");

    let (p, at) = one(&gear(
        "[gear.config.s]\ntype = \"string\"\ndefault = \"x\"\npattern = \"(abc\"\n",
    ));
    assert_eq!(p.code, "gear::config-invalid-pattern");
    assert_eq!(
        p.message,
        "`pattern` of config `s` is not a valid regular expression: unclosed group"
    );
    assert!(p.help.unwrap().starts_with("fix the pattern"));
    assert_eq!(at, "\"(abc\"");

    // JSON-Schema patterns are unanchored searches.
    assert!(
        all(&gear(
            "[gear.config.s]\ntype = \"string\"\ndefault = \"sub-01\"\npattern = \"[0-9]+\"\n"
        ))
        .1
        .is_empty()
    );
}

#[test]
fn config_lengths() {
    let (p, at) = one(&gear(
        "[gear.config.s]\ntype = \"string\"\ndefault = \"\"\nminLength = 1\n",
    ));
    assert_eq!(p.code, "gear::config-default-length");
    assert_eq!(
        p.message,
        "`default` of config `s` has 0 characters, but its `minLength` is 1"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("change `default` to have at least 1 characters, or change `minLength`")
    );
    assert_eq!(at, "\"\"");
    let (p, _) = one(&gear(
        "[gear.config.s]\ntype = \"string\"\ndefault = \"éé\"\nmaxLength = 1\n",
    ));
    assert_eq!(
        p.message,
        "`default` of config `s` has 2 characters, but its `maxLength` is 1"
    );
    let (p, _) = one(&gear(
        "[gear.config.a]\ntype = \"array\"\ndefault = [1, 2]\nmaxItems = 1\n",
    ));
    assert_eq!(
        p.message,
        "`default` of config `a` has 2 items, but its `maxItems` is 1"
    );
}

#[test]
fn config_empty_range() {
    let (p, at) = one(&gear(
        "[gear.config.n]\ntype = \"integer\"\nminimum = 10\nmaximum = 5\n",
    ));
    assert_eq!(p.code, "gear::config-empty-range");
    assert_eq!(
        p.message,
        "config `n` allows no value: `minimum` 10 is greater than `maximum` 5"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("fix the bounds so that `minimum` is below `maximum` (swapped?)")
    );
    assert_eq!(at, "10");
    let (p, _) = one(&gear(
        "[gear.config.n]\ntype = \"number\"\nexclusiveMinimum = 1\nmaximum = 1\n",
    ));
    assert_eq!(
        p.message,
        "config `n` allows no value: `exclusiveMinimum` 1 is equal to `maximum` 1"
    );
    let (p, at) = one(&gear(
        "[gear.config.s]\ntype = \"string\"\nminLength = 3\nmaxLength = 2\n",
    ));
    assert_eq!(
        p.message,
        "config `s` allows no value: `minLength` 3 is greater than `maxLength` 2"
    );
    assert_eq!(at, "3");
    assert!(
        all(&gear(
            "[gear.config.n]\ntype = \"integer\"\nminimum = 5\nmaximum = 5\n"
        ))
        .1
        .is_empty()
    );
}

#[test]
fn input_keys_by_base() {
    let (layer, ps) = all(&gear(
        "[gear.inputs.key]\nbase = \"api-key\"\noptional = true\nread-only = true\n\n[gear.inputs.ctx]\nbase = \"context\"\ntype = { enum = [\"x\"] }\nread-only = false\n\n[gear.inputs.f]\nread-only = true\noptional = true\n",
    ));
    let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        [
            "gear::input-file-key",
            "gear::input-file-key",
            "gear::input-read-only",
            "gear::input-read-only"
        ]
    );
    assert_eq!(
        ps[0].message,
        "`optional` is only for file inputs, but input `key` is an api-key input"
    );
    assert_eq!(
        ps[0].help.as_deref(),
        Some("remove `optional`: Flywheel accepts it only on inputs with `base = \"file\"`")
    );
    assert_eq!(
        ps[2].message,
        "`read-only` is only for api-key inputs, but input `ctx` is a context input"
    );
    assert_eq!(
        ps[2].help.as_deref(),
        Some("remove `read-only`, or set `base = \"api-key\"` if this input is the gear's API key")
    );
    let at: Vec<&str> = ps.iter().map(|p| spanned(&layer, p)).collect();
    assert_eq!(at, ["optional", "type", "read-only", "read-only"]);
    assert_eq!(
        ps[3].message,
        "`read-only` is only for api-key inputs, but input `f` is a file input"
    );
}

#[test]
fn custom_gear_builder() {
    let (layer, ps) = all(&gear(
        "[gear.custom.gear-builder]\nimage = \"lab/g:0.9\"\ncategory = \"Analysis\"\n",
    ));
    let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
    assert_eq!(codes, ["gear::custom-image", "gear::unknown-category"]);
    assert_eq!(
        ps[0].message,
        "`custom.gear-builder.image` is derived from `image` and `version`; remove it"
    );
    assert_eq!(
        ps[0].help.as_deref(),
        Some("remove it: cargo-gear sets it to `image:version` (`\"lab/g:1.0.0\"`)")
    );
    assert_eq!(spanned(&layer, &ps[0]), "image");
    assert_eq!(ps[1].message, "`Analysis` is not a Flywheel gear category");
    assert_eq!(
        ps[1].help.as_deref(),
        Some(
            "did you mean `category = \"analysis\"`? (Flywheel's categories: analysis, converter, utility, classifier, qa)"
        )
    );
    assert_eq!(spanned(&layer, &ps[1]), "\"Analysis\"");

    let (p, _) = one(&gear(
        "[gear.custom]\n\"gear-builder\" = { category = \"convertor\" }\n",
    ));
    assert!(
        p.help
            .unwrap()
            .starts_with("did you mean `category = \"converter\"`?")
    );
    let (p, at) = one(&gear("[gear.custom]\n\"gear-builder\" = \"analysis\"\n"));
    assert_eq!(p.code, "gear::custom-gear-builder");
    assert_eq!(at, "\"analysis\"");
    assert!(
        all(&gear(
            "[gear.custom]\n\"gear-builder\" = { category = \"qa\", other = 1 }\n"
        ))
        .1
        .is_empty()
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = "[gear]\nname = \"Bad Name\"\nimage = \"x/g:latest\"\nversion = \"1 0\"\nlabel = \"L\"\ndescription = \"D\"\nauthor = \"A\"\nlicense = \"mit\"\n\n[gear.config.n]\ntype = \"integer\"\ndefault = 1\noptional = true\n";
    let (_, ps) = all(text);
    let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        [
            "gear::gear-without-from",
            "gear::invalid-name",
            "gear::image-has-tag",
            "gear::invalid-version",
            "gear::unknown-license",
            "gear::config-default-and-optional",
        ]
    );
}

/// What a user sees for a gear with many mistakes: every problem, located.
#[test]
fn kitchen_sink_report() {
    let text = r#"[gear]
name = "My_Gear"
image = "lab/my-gear:latest"
digest = "sha256:0"
version = "1.0 beta"
label = "My gear"
description = "Does things."
author = "Lab"
license = "apache-2.0"
source = "https://example.org/src "
url = "example.org"

[gear.inputs.key]
base = "api-key"
optional = true

[gear.inputs.scan]
read-only = true

[gear.config.threads]
type = "integer"
default = 0.5
minimum = 1

[gear.config.mode]
type = "string"
default = "fsat"
enum = ["fast", "slow", 3]
optional = true

[gear.config.ratio]
type = "number"
default = 2
minimum = 1
maximum = 0

[gear.custom.gear-builder]
category = "analyses"
image = "lab/my-gear:1.0"
"#;
    let (_, ps) = all(text);
    let report: Vec<String> = ps
        .iter()
        .map(|p| {
            format!(
                "{} [{}] {}\n    label: {}\n    help: {}",
                p.location().unwrap(),
                p.code,
                p.message,
                p.label.as_deref().unwrap(),
                p.help.as_deref().unwrap()
            )
        })
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

#[test]
fn codes_are_unique_and_namespaced() {
    let mut seen = std::collections::HashSet::new();
    for code in CODES {
        assert!(code.starts_with("gear::") && seen.insert(code), "{code}");
    }
}

#[test]
fn sanitizers() {
    assert_eq!(sanitize_name("GRP_14"), "grp-14");
    assert_eq!(sanitize_name("--A  b--"), "a-b");
    assert_eq!(sanitize_name("__"), "");
    assert_eq!(sanitize_tag(" 1.0+x "), "1.0-x");
    assert_eq!(sanitize_tag("-.1"), "1");
}

#[test]
fn command_scripts() {
    let v0 = "/flywheel/v0";
    for (command, script) in [
        ("./run", Some("run")),
        ("bash run.sh --verbose", Some("run.sh")),
        ("python3 -u run.py", Some("run.py")),
        ("python3.12 app/main.py", Some("app/main.py")),
        ("/flywheel/v0/run.py", Some("run.py")),
        ("Rscript /flywheel/v0/bin/../main.R", Some("main.R")),
        ("FOO=1 exec ./start", Some("start")),
        ("python3 -m app", None),
        ("bash -c 'echo hi'", None),
        ("echo hi", None),
        ("/usr/local/bin/tool --x", None),
        ("sh $SCRIPT", None),
        ("../outside", None),
    ] {
        assert_eq!(command_script(command, v0).as_deref(), script, "{command}");
    }
    // Relative paths of another workdir are not the gear's to check.
    assert_eq!(command_script("python3 run.py", "/opt/app"), None);
    assert_eq!(
        command_script("python3 /flywheel/v0/run.py", "/opt/app").as_deref(),
        Some("run.py")
    );
}

/// A build context holding `copy/<name>` for each name.
fn context_of(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("copy/{n}")).collect()
}

#[test]
fn a_gear_needs_a_command_or_a_run_file() {
    let layer = load(GEAR);
    let problems = check_start(
        &layer,
        context_of(&["run.py", "app/x.py"])
            .iter()
            .map(String::as_str),
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p.code, "gear::no-command");
    assert_eq!(
        p.message,
        "gear `g` has no `command` and no `run` file: Flywheel would execute /flywheel/v0/run, which its image lacks"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("add `command = \"python3 run.py\"` to [gear], or name the script `run`")
    );
    assert_eq!(spanned(&layer, p), "gear");
    assert!(check_start(&layer, context_of(&["run"]).iter().map(String::as_str)).is_empty());
    let placed = load(&gear("files = { \"/flywheel/v0/run\" = \"bin/start\" }\n"));
    assert!(
        check_start(
            &placed,
            context_of(&["bin/start"]).iter().map(String::as_str)
        )
        .is_empty()
    );
    // A layer is not started by Flywheel.
    let base = load("[layer]\nname = \"b\"\nfrom = \"a\"\nimage = \"x/b\"\n");
    assert!(check_start(&base, context_of(&[]).iter().map(String::as_str)).is_empty());
}

#[test]
fn command_script_must_be_in_the_gear() {
    let layer = load(&gear("command = \"python3 rum.py\"\n"));
    let problems = check_start(&layer, context_of(&["run.py"]).iter().map(String::as_str));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p.code, "gear::command-script-missing");
    assert_eq!(
        p.message,
        "`command` runs `rum.py`, which is not among the files gear `g` copies into /flywheel/v0"
    );
    assert_eq!(
        p.help.as_deref(),
        Some("did you mean `run.py`? (`command = \"python3 run.py\"`)")
    );
    assert_eq!(spanned(&layer, p), "\"python3 rum.py\"");
    assert!(check_start(&layer, context_of(&["rum.py"]).iter().map(String::as_str)).is_empty());
    let placed = load(&gear(
        "command = \"/flywheel/v0/tool\"\nfiles = { \"/flywheel/v0/tool\" = \"bin/tool\" }\n",
    ));
    assert!(check_start(&placed, context_of(&[]).iter().map(String::as_str)).is_empty());
    let module = load(&gear("command = \"python3 -m app\"\n"));
    assert!(check_start(&module, context_of(&[]).iter().map(String::as_str)).is_empty());
}
