//! Generated files are committed; this test fails when they are stale.
//! `cargo xtask codegen` (which sets `CARGO_GEAR_CODEGEN=write`) rewrites them.

use std::path::Path;

fn check(rel: &str, generated: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    if std::env::var("CARGO_GEAR_CODEGEN").as_deref() == Ok("write") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
        eprintln!("updated {rel}");
    } else {
        panic!("{rel} is stale: run `cargo xtask codegen` and commit the result");
    }
}

#[test]
fn gear_toml_schema_is_current() {
    check("schemas/gear.schema.json", gear_spec::schema::json_schema());
}

#[test]
fn gear_toml_reference_is_current() {
    check("docs/gear-toml.md", gear_spec::schema::reference_markdown());
}

#[path = "support/examples.rs"]
mod examples;

#[test]
fn ci_recipes_are_current() {
    let plan = examples::plan();
    let build: Vec<bool> = plan.layers.iter().map(|l| l.built().is_some()).collect();
    let input = gear_spec::pipeline::PipelineInput {
        plan: &plan,
        build: &build,
        registry: "registry.example.org/neuro",
        global_args: &[],
    };
    check("docs/ci.md", gear_spec::pipeline::ci_markdown(&input));
}
