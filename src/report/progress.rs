//! Live progress on a terminal: a spinner line per running step (`⠋ deploy › build  3.2s  <the
//! last line it wrote>`) and, while a stream of events is worked through, a counter line. The
//! display is process-wide and installed once, by `vane run`, only when stderr is a terminal and
//! the output is human; until then every function here is a cheap no-op, so the engine and the
//! steps call them unconditionally and tests, pipes, `--json` and `--quiet` see nothing of it.

use super::Totals;
use crate::secrets::Masker;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

static LIVE: OnceLock<Live> = OnceLock::new();

/// How often spinners turn and elapsed times advance.
const TICK: Duration = Duration::from_millis(100);
const STEP_TEMPLATE: &str = "{spinner:.cyan} {prefix:.bold}  {took:.dim}  {wide_msg:.dim}";
const COUNTER_TEMPLATE: &str = "{spinner:.cyan} {msg}  {took:.dim}";

/// The installed display.
struct Live {
    bars: MultiProgress,
    /// Running steps by key (`run-id/job/step`).
    steps: Mutex<HashMap<String, ProgressBar>>,
    counter: Mutex<Counter>,
    step_style: ProgressStyle,
    counter_style: ProgressStyle,
    /// Step output is shown as it is written, before the reporter's masking: it is masked here.
    masker: Masker,
    /// The terminal's width when the display was installed: no output line is kept longer.
    width: usize,
}

/// The events finished so far; the line appears once a second event is under way.
#[derive(Default)]
struct Counter {
    events: usize,
    runs: usize,
    failed: usize,
    bar: Option<ProgressBar>,
}

/// Installs the display on stderr. `vane run` calls it when stderr is a terminal and the output
/// is human (not `--json`, `--quiet` or GitHub Actions); a second call changes nothing.
pub fn install(masker: Masker) {
    LIVE.get_or_init(|| Live {
        bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        steps: Mutex::new(HashMap::new()),
        counter: Mutex::new(Counter::default()),
        step_style: style(STEP_TEMPLATE),
        counter_style: style(COUNTER_TEMPLATE),
        masker,
        width: terminal_width(),
    });
}

/// Whether a display is installed: callers skip building keys and labels when not.
pub fn enabled() -> bool {
    LIVE.get().is_some()
}

/// A step began: its line (`workflow › step`) appears and ticks until `step_finished`.
pub fn step_started(key: &str, label: &str) {
    let Some(live) = LIVE.get() else { return };
    let bar = live.bars.add(
        ProgressBar::new_spinner()
            .with_style(live.step_style.clone())
            .with_prefix(label.to_string()),
    );
    bar.enable_steady_tick(TICK);
    lock(&live.steps).insert(key.to_string(), bar);
    // A step after a finished event means a stream: now the counter is worth its line.
    let mut counter = lock(&live.counter);
    if counter.events > 0 {
        live.show_counter(&mut counter);
    }
}

/// A complete line the step wrote (masked already): the step's line shows it, cut to the width.
fn step_line(key: &str, line: &str) {
    let Some(live) = LIVE.get() else { return };
    let Some(bar) = lock(&live.steps).get(key).cloned() else {
        return;
    };
    // Masked again once cleaned (a secret that escape sequences interrupted); cut only then, so
    // no part of a secret survives the cut.
    if let Some(text) = shown_text(line) {
        bar.set_message(cut(&live.masker.mask(&text), live.width));
    }
}

/// The step ended (whatever its outcome): its line goes; the reporter prints the result.
pub fn step_finished(key: &str) {
    let Some(live) = LIVE.get() else { return };
    if let Some(bar) = lock(&live.steps).remove(key) {
        bar.finish_and_clear();
        live.bars.remove(&bar);
    }
}

/// An event is done (its block was printed): the counter counts it.
pub fn event_done(totals: &Totals) {
    let Some(live) = LIVE.get() else { return };
    let mut counter = lock(&live.counter);
    counter.events = totals.events;
    counter.runs = totals.runs;
    counter.failed = totals.failed;
    if counter.events > 1 {
        live.show_counter(&mut counter);
    } else if let Some(bar) = &counter.bar {
        bar.set_message(counter_line(&counter));
    }
}

/// Runs `write` with the lines cleared, and redraws them after: what the reporter prints to
/// stdout (or anyone to stderr) then never lands in the middle of a spinner line.
pub fn suspend<R>(write: impl FnOnce() -> R) -> R {
    match LIVE.get() {
        Some(live) => live.bars.suspend(write),
        None => write(),
    }
}

/// Clears every line, before the closing summary.
pub fn finish() {
    let Some(live) = LIVE.get() else { return };
    for (_, bar) in lock(&live.steps).drain() {
        bar.finish_and_clear();
    }
    if let Some(bar) = lock(&live.counter).bar.take() {
        bar.finish_and_clear();
    }
    let _ = live.bars.clear();
}

impl Live {
    fn show_counter(&self, counter: &mut Counter) {
        let line = counter_line(counter);
        match &counter.bar {
            Some(bar) => bar.set_message(line),
            None => {
                // Above the step lines, which come and go below it.
                let bar = self.bars.insert(
                    0,
                    ProgressBar::new_spinner()
                        .with_style(self.counter_style.clone())
                        .with_message(line),
                );
                bar.enable_steady_tick(TICK);
                counter.bar = Some(bar);
            }
        }
    }
}

/// What a step's line shows of a line it wrote: the last redraw of a progress meter (`10%\r20%`),
/// without escapes; nothing for a line that is blank once cleaned.
fn shown_text(line: &str) -> Option<String> {
    line.rsplit('\r')
        .map(|segment| clean(segment.as_bytes()))
        .find(|text| !text.is_empty())
}

/// The display as a consumer of the run-event stream: a spinner line per running step, showing
/// the newest line it wrote; the counter as events finish.
pub struct Progress<'a> {
    pub set: &'a crate::workflow::WorkflowSet,
}

impl crate::pipeline::Consumer for Progress<'_> {
    fn observe(&mut self, event: &crate::engine::RunEvent<'_>) {
        use crate::engine::RunEvent;
        let key = |step: &crate::engine::StepRef| {
            format!(
                "{}/{}/{}",
                step.run_id,
                step.job.unwrap_or(""),
                step.step.id
            )
        };
        match event {
            RunEvent::StepStarted(step) => {
                let workflow = &self.set.workflows[step.workflow].name;
                let label = match step.job {
                    Some(job) => format!("{workflow} › {job} › {}", step.step.id),
                    None => format!("{workflow} › {}", step.step.id),
                };
                step_started(&key(step), &label);
            }
            RunEvent::StepOutput { step, line, .. } => step_line(&key(step), line),
            RunEvent::StepFinished { step, .. } => step_finished(&key(step)),
            _ => {}
        }
    }
}

/// The text of a line as a terminal would show it: escape sequences (colours, cursor moves)
/// and control characters removed, tabs as spaces, trimmed.
fn clean(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(char) = chars.next() {
        match char {
            '\x1b' => skip_escape(&mut chars),
            '\t' => out.push(' '),
            char if char.is_control() => {}
            char => out.push(char),
        }
    }
    out.trim().to_string()
}

/// Skips the rest of an escape sequence: CSI (`ESC [ … final`), OSC (`ESC ] … BEL` or
/// `ESC ] … ESC \`), or a two-character one.
fn skip_escape(chars: &mut std::str::Chars) {
    match chars.next() {
        Some('[') => {
            for char in chars.by_ref() {
                if ('@'..='~').contains(&char) {
                    break;
                }
            }
        }
        Some(']') => {
            while let Some(char) = chars.next() {
                if char == '\x07' {
                    break;
                }
                if char == '\x1b' {
                    chars.next();
                    break;
                }
            }
        }
        _ => {}
    }
}

/// At most `width` characters, the last one `…` when the line was longer.
fn cut(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        cut.push('…');
    }
    cut
}

/// `3.2s` under a minute, then `1m05s`.
fn format_elapsed(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    if seconds < 60 {
        format!("{:.1}s", elapsed.as_secs_f64())
    } else {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

fn counter_line(counter: &Counter) -> String {
    let plural = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let mut line = format!(
        "{}, {}",
        plural(counter.events, "event", "events"),
        plural(counter.runs, "run", "runs")
    );
    if counter.failed > 0 {
        line.push_str(&format!(", {} failed", counter.failed));
    }
    line
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants, parsed by a unit test below.
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .with_key(
            "took",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = out.write_str(&format_elapsed(state.elapsed()));
            },
        )
}

/// Columns of the terminal on stderr; 80 when it does not say.
fn terminal_width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ only fills the `winsize` it is given; on failure it stays zeroed.
    let filled = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if filled && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

/// A lock that outlives a panicked holder: a progress line is never worth a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_its_last_redraw_without_escapes() {
        let cases = [
            ("plain", Some("plain")),
            ("10%\r20%\r", Some("20%")),
            ("  \x1b[0m ", None),
            ("", None),
        ];
        for (line, expected) in cases {
            assert_eq!(shown_text(line).as_deref(), expected, "{line:?}");
        }
    }

    #[test]
    fn escapes_and_controls_are_removed() {
        let cases = [
            ("\x1b[1;32mok\x1b[0m done", "ok done"),
            ("\x1b]0;title\x07text", "text"),
            ("\x1b]8;;http://x\x1b\\link", "link"),
            ("a\tb\x07c", "a bc"),
            ("   padded   ", "padded"),
        ];
        for (raw, expected) in cases {
            assert_eq!(clean(raw.as_bytes()), expected, "{raw:?}");
        }
    }

    #[test]
    fn lines_are_cut_to_the_width() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly10!", 10), "exactly10!");
        assert_eq!(cut("a longer line", 6), "a lon…");
        assert_eq!(cut("héllo wörld", 4), "hél…");
        assert_eq!(cut("anything", 0), "");
    }

    #[test]
    fn elapsed_times_read_short() {
        assert_eq!(format_elapsed(Duration::from_millis(3240)), "3.2s");
        assert_eq!(format_elapsed(Duration::from_secs(65)), "1m05s");
    }

    #[test]
    fn counter_lines_count_events_and_runs() {
        let mut counter = Counter {
            events: 1,
            runs: 1,
            ..Counter::default()
        };
        assert_eq!(counter_line(&counter), "1 event, 1 run");
        counter.events = 12;
        counter.runs = 3;
        counter.failed = 1;
        assert_eq!(counter_line(&counter), "12 events, 3 runs, 1 failed");
    }

    #[test]
    fn templates_parse_and_nothing_happens_when_not_installed() {
        style(STEP_TEMPLATE);
        style(COUNTER_TEMPLATE);
        // The unit tests never install a display: every call is a no-op.
        assert!(!enabled());
        step_started("run/main/build", "deploy › build");
        step_finished("run/main/build");
        assert_eq!(suspend(|| 7), 7);
    }
}
