//! API tests: Status.

use super::*;

/// A `Run::set_status_*` method.
type StatusSetter = fn(&Run) -> runstore::Result<()>;

#[test]
fn set_status_methods_set_each_status_with_its_3lc_code() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let setters: [(StatusSetter, RunStatus, u8, &str); 7] = [
        (
            Run::set_status_completed,
            RunStatus::Completed,
            1,
            "COMPLETED",
        ),
        (Run::set_status_empty, RunStatus::Empty, 2, "EMPTY"),
        (Run::set_status_running, RunStatus::Running, 3, "RUNNING"),
        (
            Run::set_status_collecting,
            RunStatus::Collecting,
            4,
            "COLLECTING",
        ),
        (
            Run::set_status_post_processing,
            RunStatus::PostProcessing,
            5,
            "POST_PROCESSING",
        ),
        (Run::set_status_paused, RunStatus::Paused, 6, "PAUSED"),
        (
            Run::set_status_cancelled,
            RunStatus::Cancelled,
            7,
            "CANCELLED",
        ),
    ];
    for (set, status, code, name) in setters {
        set(&run).unwrap();
        assert_eq!(run.status().unwrap(), status);
        assert_eq!(run.info().unwrap().status, status);
        assert_eq!(status.code(), code);
        assert_eq!(status.name(), name);
        assert_eq!(status.to_string(), name);
        assert_eq!(RunStatus::from_code(f64::from(code)).unwrap(), status);
    }
    assert_eq!(RunStatus::ALL.map(RunStatus::code), [1, 2, 3, 4, 5, 6, 7]);
    for status in RunStatus::ALL {
        run.set_status(status).unwrap();
        assert_eq!(run.status().unwrap(), status);
    }
}

#[test]
fn run_status_from_code_outside_1_to_7_is_invalid_status() {
    for code in [0.0, 8.0, 2.5, -1.0, 1.000_001, f64::INFINITY] {
        let err = RunStatus::from_code(code).unwrap_err();
        assert!(
            matches!(err, Error::InvalidStatus { code: c } if c == code),
            "{code}: {err:?}"
        );
    }
    let err = RunStatus::from_code(f64::NAN).unwrap_err();
    assert!(
        matches!(err, Error::InvalidStatus { code } if code.is_nan()),
        "{err:?}"
    );
    assert_eq!(RunStatus::from_code(3.0).unwrap(), RunStatus::Running);
}

#[test]
fn run_status_parse_reads_names_and_codes() {
    let cases = [
        ("COMPLETED", RunStatus::Completed),
        ("completed", RunStatus::Completed),
        ("Empty", RunStatus::Empty),
        (" running ", RunStatus::Running),
        ("collecting", RunStatus::Collecting),
        ("POST_PROCESSING", RunStatus::PostProcessing),
        ("post-processing", RunStatus::PostProcessing),
        ("paused", RunStatus::Paused),
        ("CANCELLED", RunStatus::Cancelled),
        ("1", RunStatus::Completed),
        ("3", RunStatus::Running),
        ("5.0", RunStatus::PostProcessing),
        ("7", RunStatus::Cancelled),
    ];
    for (text, status) in cases {
        assert_eq!(RunStatus::parse(text).unwrap(), status, "{text:?}");
    }
    for status in RunStatus::ALL {
        assert_eq!(RunStatus::parse(status.name()).unwrap(), status);
        assert_eq!(
            RunStatus::parse(&status.code().to_string()).unwrap(),
            status
        );
    }
    for text in ["0", "8", "2.5"] {
        let err = RunStatus::parse(text).unwrap_err();
        assert!(
            matches!(err, Error::InvalidStatus { .. }),
            "{text:?}: {err:?}"
        );
    }
    for text in ["done", "", "POSTPROCESSING", "running!"] {
        let err = RunStatus::parse(text).unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{text:?}: {err:?}"
        );
    }
}
