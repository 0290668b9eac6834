use super::*;

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

fn value(text: &str, series: &str) -> f64 {
    let l = line(text, &format!("{series} "))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"));
    l.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn aws_attempts_count_every_outcome_and_429s_apart() {
    let m = Metrics::new();
    m.aws_call("UpdateIntegration", "ok");
    m.aws_call("GetIntegration", "throttled");
    m.aws_call("GetIntegration", "throttled");
    m.aws_call("GetIntegration", "ok");
    let text = m.render();
    assert_eq!(
        value(
            &text,
            r#"apigw_aws_calls_total{operation="UpdateIntegration",outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_aws_calls_total{operation="GetIntegration",outcome="throttled"}"#
        ),
        2.0
    );
    assert_eq!(value(&text, "apigw_aws_throttles_total"), 2.0);
}

#[test]
fn reconciles_and_errors_are_counted_by_kind_and_reason() {
    let m = Metrics::new();
    m.reconciled("integration", "ok", 0.01);
    m.reconciled("integration", "throttled", 0.02);
    m.reconciled("stage", "kube", 0.5);
    let text = m.render();
    assert_eq!(
        value(
            &text,
            r#"apigw_reconciles_total{kind="integration",result="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_reconcile_errors_total{kind="integration",reason="throttled"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_reconcile_errors_total{kind="stage",reason="kube"}"#
        ),
        1.0
    );
    assert!(
        line(
            &text,
            r#"apigw_reconcile_errors_total{kind="integration",reason="ok"}"#
        )
        .is_none(),
        "a success is no error:\n{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_reconcile_duration_seconds_count{kind="integration"}"#
        ),
        2.0
    );
}

#[test]
fn collectors_fill_objects_buckets_and_observation_age_at_each_scrape() {
    let m = Metrics::new();
    let round = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = round.clone();
    m.add_collector(move |scrape| {
        let first = r.fetch_add(1, Ordering::SeqCst) == 0;
        scrape
            .objects
            .insert(("integration", "True".into(), "Synced".into()), 3);
        if first {
            scrape
                .objects
                .insert(("integration", "False".into(), "InvalidSpec".into()), 1);
        }
        scrape.oldest_observation.insert("integration", 42.5);
        scrape.buckets.push(BucketState {
            bucket: "account",
            account: "111111111111".into(),
            region: "us-east-1".into(),
            tokens: 7.5,
            rate: 2.5,
            waiting_change: 2,
            waiting_drift: 1,
        });
    });
    m.quota_waited(
        "account",
        crate::aws::Priority::Change,
        Duration::from_millis(300),
    );
    let text = m.render();
    assert_eq!(
        value(
            &text,
            r#"apigw_objects{kind="integration",ready="False",reason="InvalidSpec"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_quota_tokens{bucket="account",account="111111111111",region="us-east-1"}"#
        ),
        7.5
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_quota_rate{bucket="account",account="111111111111",region="us-east-1"}"#
        ),
        2.5
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_quota_waiters{bucket="account",priority="change"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_quota_wait_seconds_count{bucket="account",priority="change"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_drift_oldest_observation_seconds{kind="integration"}"#
        ),
        42.5
    );
    // The next scrape reads the cache again: an object no longer InvalidSpec leaves the series.
    let text = m.render();
    assert!(
        line(
            &text,
            r#"apigw_objects{kind="integration",ready="False",reason="InvalidSpec"}"#
        )
        .is_none(),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_objects{kind="integration",ready="True",reason="Synced"}"#
        ),
        3.0
    );
}

#[test]
fn the_work_queue_counts_objects_waiting_to_start_and_the_oldest_wait() {
    let m = Metrics::new();
    let q = m.queue("integration");
    q.triggered("ns/a");
    q.triggered("ns/b");
    q.triggered("ns/a");
    let text = m.render();
    assert_eq!(
        value(&text, r#"apigw_workqueue_depth{kind="integration"}"#),
        2.0
    );
    assert!(
        value(
            &text,
            r#"apigw_workqueue_oldest_seconds{kind="integration"}"#
        ) >= 0.0
    );
    q.started("ns/a");
    q.retain(|k| k != "ns/b");
    let text = m.render();
    assert_eq!(
        value(&text, r#"apigw_workqueue_depth{kind="integration"}"#),
        0.0
    );
    assert_eq!(
        value(
            &text,
            r#"apigw_workqueue_oldest_seconds{kind="integration"}"#
        ),
        0.0
    );
}
