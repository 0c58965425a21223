//! Metrics-table tests: The CLI.

use super::*;

const DEMO_RUN: &str = "cifar10-sweep/runs/resnet18-lr0.1";

#[test]
fn cli_demo_store_shows_scans_and_lists_metrics_tables() {
    let (dir, path) = temp_store();
    let path_text = path.to_str().unwrap();
    runstore_ok(&["demo", path_text]);
    assert_eq!(file_names(dir.path()), ["test.runs"]);
    // The user's blob and the reducer the demo's PCA stored, labelled apart.
    let text = runstore_ok(&["show", path_text, DEMO_RUN]);
    let labelled = |label: &str, name: &str| {
        text.lines()
            .any(|line| line.starts_with(label) && line.contains(name))
    };
    assert!(labelled("bulk ", "/bulk_data/checkpoint.pt"), "{text}");
    assert!(labelled("reducer ", "/bulk_data/reducer-pca-"), "{text}");

    let show: serde_json::Value =
        serde_json::from_str(&runstore_ok(&["show", path_text, DEMO_RUN, "--json"])).unwrap();
    let metrics = show["metrics"].as_array().expect("metrics array");
    for entry in metrics {
        let keys: Vec<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["url", "stream_name", "row_count", "file_size"]);
        assert!(entry["file_size"].as_u64().unwrap() > 0);
    }
    let table_url = format!("{DEMO_RUN}/metrics_0000");
    let evaluation = metrics
        .iter()
        .find(|m| m["url"] == table_url.as_str())
        .unwrap_or_else(|| panic!("no {table_url} in {metrics:?}"));
    assert_eq!(evaluation["row_count"], 10_000);
    assert_eq!(evaluation["stream_name"], STREAM_DEFAULT);
    assert!(evaluation["file_size"].as_u64().unwrap() >= 10_000 * 64 * 4);

    let csv = runstore_ok(&[
        "scan",
        path_text,
        &table_url,
        "--columns",
        "example_id,loss",
        "--limit",
        "3",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(lines[0], "example_id,loss");
    for (i, line) in lines[1..].iter().enumerate() {
        let (id, loss) = line.split_once(',').expect("two cells");
        assert_eq!(id, i.to_string());
        assert!(loss.parse::<f32>().unwrap() > 0.0, "{line}");
    }

    let json = runstore_ok(&[
        "scan",
        path_text,
        &table_url,
        "--columns",
        "example_id,loss",
        "--limit",
        "3",
        "--format",
        "json",
    ]);
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 3, "{json}");
    for (i, object) in objects.iter().enumerate() {
        let keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["example_id", "loss"]);
        assert_eq!(object["example_id"], i);
    }

    // The embedding is one CSV cell holding its 64 numbers, the stored ones.
    let csv = runstore_ok(&[
        "scan",
        path_text,
        &table_url,
        "--columns",
        "embedding",
        "--limit",
        "1",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(lines[0], "embedding");
    let cell = lines[1]
        .strip_prefix("\"[")
        .and_then(|rest| rest.strip_suffix("]\""))
        .unwrap_or_else(|| panic!("not a quoted list: {}", lines[1]));
    let numbers: Vec<f32> = cell
        .split(", ")
        .map(|n| n.parse().unwrap_or_else(|_| panic!("not a number: {n}")))
        .collect();
    assert_eq!(numbers.len(), 64);
    let store = Store::open_read_only(&path).unwrap();
    let batches = store
        .table(&table_url)
        .unwrap()
        .scan_with(&ScanOptions {
            columns: Some(vec!["embedding".into()]),
            rows: Some(0..1),
        })
        .unwrap();
    let stored = batches[0].column(0).as_fixed_size_list().value(0);
    assert_eq!(
        numbers,
        stored.as_primitive::<Float32Type>().values().to_vec()
    );
    drop((batches, store));

    let tables = runstore_ok(&["tables", path_text, DEMO_RUN]);
    assert!(
        tables.contains(&format!("{DEMO_RUN}/steps_0000")),
        "{tables}"
    );
    assert!(tables.contains(&table_url), "{tables}");
    assert!(tables.contains("10000"), "{tables}");
    // steps, the evaluation and its 2-D PCA (the demo reduces the completed runs' embeddings).
    assert!(tables.contains(&format!("{table_url}_pca")), "{tables}");
    assert!(tables.trim_end().ends_with("(3 tables)"), "{tables}");
    let json = runstore_ok(&["tables", path_text, DEMO_RUN, "--json"]);
    let urls: Vec<String> = json
        .lines()
        .map(|line| {
            let object: serde_json::Value = serde_json::from_str(line).unwrap();
            object["url"].as_str().unwrap().to_string()
        })
        .collect();
    let mut expected: Vec<String> = metrics
        .iter()
        .map(|m| m["url"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    let mut sorted = urls.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
}

#[test]
fn cli_demo_refuses_to_replace_a_file_that_is_not_a_store() {
    let (dir, path) = temp_store();
    let text = "epoch,loss\n1,0.5\n";
    fs::write(&path, text).unwrap();
    let output = runstore(&["demo", path.to_str().unwrap()]);
    assert!(!output.status.success(), "demo replaced a text file");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_eq!(file_names(dir.path()), ["test.runs"]);
    // An empty file is not a store either.
    fs::write(&path, "").unwrap();
    let output = runstore(&["demo", path.to_str().unwrap()]);
    assert!(!output.status.success(), "demo replaced an empty file");
    assert_eq!(fs::read(&path).unwrap(), b"");
}

#[test]
fn cli_demo_replaces_its_own_earlier_store() {
    let (dir, path) = temp_store();
    let path_text = path.to_str().unwrap();
    runstore_ok(&["demo", path_text]);
    let first = Store::open_read_only(&path).unwrap().info().unwrap();
    runstore_ok(&["demo", path_text]);
    let second = Store::open_read_only(&path).unwrap().info().unwrap();
    assert_eq!(file_names(dir.path()), ["test.runs"]);
    assert_eq!((second.runs, second.tables), (first.runs, first.tables));
    // 4 runs' steps and evaluations, the two completed runs' PCA tables, the input table.
    assert_eq!((second.runs, second.tables), (4, 11));
    let store = Store::open_read_only(&path).unwrap();
    let run = store.run(DEMO_RUN).unwrap();
    let metrics = run.metrics_tables().unwrap();
    assert_eq!(metrics.len(), 3);
    assert!(metrics.iter().any(|m| m.row_count == 10_000));
}
