//! The `apigw-operator` binary: `crd`, `version` and `plan` as a user runs them.

use std::io::Write;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_apigw-operator"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `plan -o json` prints for a plan of one UpdateIntegration.
fn calls(ops: Value) -> Value {
    json!([{"call": "UpdateIntegration", "patchOperations": ops}])
}

fn plan_example(name: &str, output: &str) -> Output {
    run(&[
        "plan",
        "-f",
        &format!("examples/{name}.yaml"),
        "--from",
        &format!("examples/live/{name}.json"),
        "-o",
        output,
    ])
}

#[test]
fn plan_reproduces_the_four_seed_examples() {
    let cases = [
        (
            "seed-1-add-passthrough-template",
            calls(json!([{"op": "add", "path": "/requestTemplates/application~1json"}])),
        ),
        (
            "seed-2-replace-with-custom-template",
            calls(
                json!([{"op": "replace", "path": "/requestTemplates/application~1json", "value": "{\"example\": \"json\"}"}]),
            ),
        ),
        (
            "seed-3-replace-with-passthrough",
            calls(json!([{"op": "replace", "path": "/requestTemplates/application~1json"}])),
        ),
        (
            "seed-4-remove-template",
            calls(json!([{"op": "remove", "path": "/requestTemplates/application~1json"}])),
        ),
    ];
    for (name, expected) in cases {
        let out = plan_example(name, "json");
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let printed: Value = serde_json::from_slice(&out.stdout).expect("plan prints JSON");
        assert_eq!(printed, expected, "{name}");
    }
}

#[test]
fn plan_prints_an_aws_cli_command_that_a_shell_reads_back() {
    let out = plan_example("seed-2-replace-with-custom-template", "cli");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let command = text(&out.stdout);
    assert!(
        command.starts_with("aws apigateway update-integration"),
        "{command}"
    );
    // Let a real POSIX shell parse the quoting: print each argument on its own line.
    let parsed = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "set -- {}; printf '%s\\n' \"$@\"",
            command.trim_end().replace("\\\n", " ")
        ))
        .output()
        .expect("sh runs");
    assert!(parsed.status.success(), "sh: {}", text(&parsed.stderr));
    let args: Vec<String> = text(&parsed.stdout).lines().map(str::to_string).collect();
    assert_eq!(
        &args[..8],
        [
            "aws",
            "apigateway",
            "update-integration",
            "--rest-api-id",
            "a1b2c3d4e5",
            "--resource-id",
            "a1b2c3",
            "--http-method"
        ]
    );
    assert_eq!(args[8], "POST");
    assert_eq!(args[9], "--patch-operations");
    let ops: Value = serde_json::from_str(&args[10]).expect("the operations survive quoting");
    assert_eq!(ops[0]["value"], "{\"example\": \"json\"}");
}

#[test]
fn plan_without_from_plans_against_an_empty_integration() {
    let out = run(&[
        "plan",
        "-f",
        "examples/seed-1-add-passthrough-template.yaml",
    ]);
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed,
        calls(json!([{"op": "add", "path": "/requestTemplates/application~1json"}]))
    );
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("apigw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(contents.as_bytes())
        .unwrap();
    path
}

const HEADER: &str =
    "apiVersion: apigw.dev/v1alpha1\nkind: ApiGatewayIntegration\nmetadata: {name: x}\n";

#[test]
fn plan_reads_several_documents_and_looks_up_names_in_cli_output() {
    let manifest = format!(
        "{HEADER}spec: {{restApiId: a1b2c3d4e5, resourceId: a1b2c3, httpMethod: GET, timeoutInMillis: 1000}}\n---\n\
         {HEADER}spec: {{restApiName: \"Pet's Store\", resourcePath: /pets, httpMethod: GET, region: eu-west-1, uri: 'https://x.example.com'}}\n"
    );
    let path = temp_file("two.yaml", &manifest);
    let out = run(&["plan", "-f", path.to_str().unwrap(), "-o", "cli"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(r#"'[{"op":"replace","path":"/timeoutInMillis","value":"1000"}]'"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("REST_API_ID=$(aws apigateway get-rest-apis --region eu-west-1 --query"),
        "{stdout}"
    );
    assert!(stdout.contains("RESOURCE_ID=$(aws apigateway get-resources --region eu-west-1 --rest-api-id \"$REST_API_ID\""), "{stdout}");
}

#[test]
fn bad_input_names_the_file_the_document_and_the_field() {
    let cases = [
        (
            "bad-enum.yaml",
            format!("{HEADER}spec: {{restApiId: a1b2c3d4e5, resourceId: a1b2c3, httpMethod: GET}}\n---\n{HEADER}spec: {{restApiId: a1b2c3d4e5, resourceId: a1b2c3, httpMethod: GET, type: HTTPS}}\n"),
            vec!["bad-enum.yaml", "document 2", "spec.type", "HTTPS"],
        ),
        (
            "bad-cel.yaml",
            format!("{HEADER}spec: {{restApiId: a1b2c3d4e5, httpMethod: GET}}\n"),
            vec!["bad-cel.yaml", "document 1", "exactly one of spec.resourceId or spec.resourcePath"],
        ),
        (
            "bad-yaml.yaml",
            format!("{HEADER}spec: [unclosed\n"),
            vec!["bad-yaml.yaml", "document 1", "not YAML"],
        ),
        (
            "bad-type.yaml",
            format!("{HEADER}spec: {{restApiId: a1b2c3d4e5, resourceId: a1b2c3, httpMethod: GET, timeoutInMillis: soon}}\n"),
            vec!["bad-type.yaml", "spec.timeoutInMillis", "integer"],
        ),
        ("empty.yaml", "# nothing\n".to_string(), vec!["empty.yaml", "no ApiGatewayIntegration"]),
    ];
    for (name, contents, needles) in cases {
        let path = temp_file(name, &contents);
        let out = run(&["plan", "-f", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{name}: {needle:?} not in {stderr:?}"
            );
        }
    }
    let out = run(&["plan", "-f", "/nonexistent/m.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/m.yaml: cannot read"));

    let live = temp_file(
        "live.json",
        r#"{"type": "HTTP", "timeoutInMillis": "fast"}"#,
    );
    let out = run(&[
        "plan",
        "-f",
        "examples/seed-1-add-passthrough-template.yaml",
        "--from",
        live.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("live.json") && stderr.contains("timeoutInMillis"),
        "{stderr}"
    );
}

#[test]
fn a_type_change_needs_replacement_and_says_how_to_allow_it() {
    let path = temp_file(
        "replace.yaml",
        &format!("{HEADER}spec: {{restApiId: a1b2c3d4e5, resourceId: a1b2c3, httpMethod: POST, type: HTTP_PROXY}}\n"),
    );
    let out = run(&[
        "plan",
        "-f",
        path.to_str().unwrap(),
        "--from",
        "examples/live/seed-1-add-passthrough-template.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("spec.type is \"HTTP_PROXY\" but AWS has \"HTTP\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("managementPolicy: CreateOrUpdate"),
        "{stderr}"
    );
}

#[test]
fn crd_and_version_commands() {
    let out = run(&["crd"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("name: apigatewayintegrations.apigw.dev"));
    let out = run(&["version"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("apigw-operator "));
}

/// `run` refuses a bad flag before it touches Kubernetes or AWS, naming the flag, and never
/// panics. No cluster is needed: validation comes first.
#[test]
fn bad_run_flags_fail_at_start_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--resync-period", "0"], "--resync-period"),
        (&["--resync-period=-5"], "--resync-period"),
        (&["--resync-period", "NaN"], "--resync-period"),
        (&["--resync-period", "1e300"], "--resync-period"),
        (&["--read-timeout", "0"], "--read-timeout"),
        (&["--connect-timeout=-1"], "--connect-timeout"),
        (&["--backoff-base", "0"], "--backoff-base"),
        (&["--backoff-cap", "inf"], "--backoff-cap"),
        (&["--concurrency", "0"], "--concurrency"),
        (&["--backoff-factor", "0.5"], "--backoff-factor"),
        (&["--aws-rps=-1"], "--aws-rps"),
        (&["--aws-burst", "0"], "--aws-burst"),
        (&["--aws-max-attempts", "0"], "--aws-max-attempts"),
        (&["--lease-duration", "0"], "--lease-duration"),
        (
            &["--lease-duration", "5", "--lease-renew-deadline", "6"],
            "--lease-renew-deadline",
        ),
        (
            &["--lease-renew-deadline", "4", "--lease-retry-period", "4"],
            "--lease-retry-period",
        ),
        (
            &["--backoff-base", "10", "--backoff-cap", "5"],
            "--backoff-base",
        ),
    ];
    for (flags, named) in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        let out = bin()
            .args(&args)
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .expect("the binary runs");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{flags:?} must name {named}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }
}

/// Parses `commands` (as `plan -o cli` prints them) with a real POSIX shell: one list of
/// arguments per command.
fn shell_words(commands: &str) -> Vec<Vec<String>> {
    commands
        .trim_end()
        .replace("\\\n", " ")
        .lines()
        .map(|line| {
            let parsed = Command::new("sh")
                .arg("-c")
                .arg(format!("set -- {line}; printf '%s\\n' \"$@\""))
                .output()
                .expect("sh runs");
            assert!(parsed.status.success(), "sh: {}", text(&parsed.stderr));
            text(&parsed.stdout).lines().map(str::to_string).collect()
        })
        .collect()
}

#[test]
fn plan_prints_every_integration_response_call_in_order() {
    let out = plan_example("integration-responses", "json");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed,
        json!([
            {"call": "DeleteIntegrationResponse", "statusCode": "400"},
            {"call": "PutIntegrationResponse", "statusCode": "404", "response": {
                "statusCode": "404", "selectionPattern": "404",
                "responseParameters": {"method.response.header.x-error": "'not found'"}}},
            {"call": "PutIntegrationResponse", "statusCode": "500", "response": {
                "statusCode": "500", "selectionPattern": "5\\d\\d",
                "responseTemplates": {"application/json": "{\"message\": \"backend error\"}"}}},
            {"call": "UpdateIntegrationResponse", "statusCode": "200", "patchOperations": [
                {"op": "replace", "path": "/responseTemplates/application~1json",
                 "value": "{\"pet\": $input.json('$')}"}]},
        ])
    );
}

#[test]
fn plan_prints_the_integration_response_commands_a_shell_reads_back() {
    let out = plan_example("integration-responses", "cli");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let commands = shell_words(&text(&out.stdout));
    let shared = |words: &[String]| words[3..9].to_vec();
    let names: Vec<&str> = commands.iter().map(|c| c[2].as_str()).collect();
    assert_eq!(
        names,
        [
            "delete-integration-response",
            "put-integration-response",
            "put-integration-response",
            "update-integration-response"
        ],
        "no update-integration: the integration itself is in sync"
    );
    for command in &commands {
        assert_eq!(command[..2], ["aws", "apigateway"]);
        assert_eq!(
            shared(command),
            [
                "--rest-api-id",
                "a1b2c3d4e5",
                "--resource-id",
                "a1b2c3",
                "--http-method",
                "GET"
            ]
        );
        assert_eq!(command[9], "--status-code");
    }
    assert_eq!(commands[0][10], "400");
    let put = &commands[1];
    assert_eq!(
        put[10..],
        [
            "404",
            "--selection-pattern",
            "404",
            "--response-parameters",
            r#"{"method.response.header.x-error":"'not found'"}"#
        ]
    );
    let patch = &commands[3];
    assert_eq!(patch[11], "--patch-operations");
    let ops: Value = serde_json::from_str(&patch[12]).expect("the operations survive quoting");
    assert_eq!(ops[0]["value"], "{\"pet\": $input.json('$')}");
}
