//! `scale`: a replica decision with Kubernetes HPA's algorithm (SPEC §2.3). The decision is pure
//! ([`ScaleInput::decide`] over the earlier recommendations and a clock reading); the engine keeps
//! the recommendations ([`crate::state::Recommendations`]) and runs `apply`.
//!
//! The order of the rules is HPA's (`pkg/controller/podautoscaler/horizontal.go`): a current
//! count outside `[min, max]` is brought inside without looking at the metric; otherwise the
//! metric gives a raw recommendation (`current` itself within the tolerance), the stabilization
//! windows hold it between the lowest recent recommendation (scale-up) and the highest
//! (scale-down), and the step limits and bounds cut what is left.

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::duration::{format_duration, parse_duration};
use crate::state::{Recommendation, Recommendations};
use crate::template::{TemplateTree, TreeError, TreeMode};
use crate::yaml::{YamlError, YamlPath};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use std::time::Duration;

/// HPA's default tolerance: no change while the metric is within 10% of the target.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// HPA's default scale-down stabilization window.
pub const DEFAULT_SCALE_DOWN_WINDOW: Duration = Duration::from_secs(300);

/// The keys of a `scale` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleKeys {
    /// A replica decision with Kubernetes HPA's algorithm; `apply` runs when it changes the count.
    #[schemars(with = "Option<ScaleConfig>")]
    pub scale: Option<Json>,
}

/// The `scale` step kind.
pub struct ScaleKind;

impl StepKind for ScaleKind {
    fn key(&self) -> &'static str {
        "scale"
    }

    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ScaleKeys::json_schema(generator)
    }

    /// `apply` is compiled apart, as a shell script: it is rendered only once the decision is
    /// made, with `desired` and the other outputs in its context.
    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: ScaleKeys = site.keys(keys)?;
        let mut value = keys.scale.unwrap_or(Json::Null);
        let path = site.key("scale");
        let scale: Option<ScaleConfig> = site.check_shape(&value, &path)?;
        check_durations(scale.as_ref(), site, &path)?;
        let apply_path = path.key("apply");
        let mut warnings = Vec::new();
        let apply = match value.as_object_mut().and_then(|map| map.remove("apply")) {
            Some(Json::String(script)) => {
                warnings = site.unsafe_interpolations(&script, &apply_path);
                Some(site.text(&script, TreeMode::Shell, &apply_path)?)
            }
            Some(_) => {
                return Err(site.at_value(
                    &apply_path,
                    "`scale.apply` must be a shell script (a string)",
                ));
            }
            None => None,
        };
        let step = ScaleStep {
            config: site.tree(&value, TreeMode::Text, &path)?,
            apply,
        };
        Ok(Compiled::new(step).with_warnings(warnings))
    }
}

/// A literal stabilization window is read at load time, so that `5 minutes` is a load error with
/// a position; a templated one waits until the step runs.
fn check_durations(
    scale: Option<&ScaleConfig>,
    site: &StepSite,
    path: &YamlPath,
) -> Result<(), YamlError> {
    let Some(scale) = scale else {
        return Ok(());
    };
    if let Some(cooldown) = scale.cooldown.as_deref()
        && !crate::template::is_template(cooldown)
        && let Err(message) = parse_duration(cooldown)
    {
        let at = path.key("cooldown");
        return Err(site.at_value(&at, format!("{at}: {message}")));
    }
    for (key, behavior) in [
        ("scale-up", &scale.scale_up),
        ("scale-down", &scale.scale_down),
    ] {
        let Some(window) = behavior
            .as_ref()
            .and_then(|behavior| behavior.stabilization.as_deref())
        else {
            continue;
        };
        if crate::template::is_template(window) {
            continue;
        }
        if let Err(message) = parse_duration(window) {
            let at = path.key(key).key("stabilization");
            return Err(site.at_value(&at, format!("{at}: {message}")));
        }
    }
    Ok(())
}

/// A compiled `scale` step: the decision's config, and `apply` apart from it.
#[derive(Debug)]
struct ScaleStep {
    config: TemplateTree,
    apply: Option<TemplateTree>,
}

impl ScaleStep {
    /// The decision, then `apply` with the decision in its context where it changes the count
    /// (not in a dry run).
    fn run(
        &self,
        rendered: &Json,
        context: &StepContext,
        dry_run: bool,
    ) -> Result<StepSuccess, StepError> {
        let config: ScaleConfig = super::typed("scale", &rendered["scale"])?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let decision = decide(&config, context.recommendations, now_ms)?;
        let mut outputs = decision.outputs();
        let mut log = None;
        if let Some(apply) = &self.apply
            && decision.direction != Direction::None
            && !dry_run
        {
            let script = render_apply(apply, context.values, &outputs)
                .map_err(|message| StepError::new(message).with_outputs(outputs.clone()))?;
            let action = super::run::RunAction {
                script: &script,
                shell: None,
                working_directory: None,
            };
            let joined = |outputs: &mut Outputs, run: &Outputs| {
                if let Some(code) = run.get("exit_code") {
                    outputs.insert("apply_exit_code".to_string(), code.clone());
                }
                if let Some(stdout) = run.get("stdout") {
                    outputs.insert("apply_stdout".to_string(), stdout.clone());
                }
            };
            match super::run::execute(&action, context) {
                Ok(run) => {
                    joined(&mut outputs, &run.outputs);
                    log = run.log;
                }
                Err(mut error) => {
                    joined(&mut outputs, &error.outputs);
                    error.message = format!("scale: apply: {}", error.message);
                    error.outputs = outputs;
                    return Err(error);
                }
            }
        }
        Ok(StepSuccess {
            outputs,
            log,
            ..StepSuccess::default()
        })
    }
}

impl CompiledStep for ScaleStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        Ok(super::keyed("scale", self.config.render(context)?))
    }

    /// The decision is pure (its recommendation is kept in memory in a plan): a plan makes it.
    fn plan(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        self.run(rendered, context, true)
    }

    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        self.run(rendered, context, false)
    }

    fn planned_outputs_are_real(&self) -> bool {
        true
    }

    /// The record shows `apply` as it ran (or, in a plan, would run): rendered with the
    /// decision, and only where the decision changed the count.
    fn complete_rendered(&self, rendered: &mut Json, outputs: &Outputs, context: &StepContext) {
        let Some(apply) = &self.apply else {
            return;
        };
        let changes = outputs
            .get("direction")
            .and_then(Json::as_str)
            .is_some_and(|direction| direction != "none");
        if !changes {
            return;
        }
        if let (Ok(script), Some(Json::Object(scale))) = (
            render_apply(apply, context.values, outputs),
            rendered.get_mut("scale"),
        ) {
            scale.insert("apply".to_string(), Json::String(script));
        }
    }

    /// The decision's reason.
    fn summary(&self, outputs: &Outputs) -> Option<String> {
        outputs
            .get("reason")
            .and_then(Json::as_str)
            .map(str::to_string)
    }
}

/// `apply` rendered with the decision's outputs (`desired`, `current`, `direction`, `reason`) on
/// top of the step's context.
fn render_apply(
    apply: &TemplateTree,
    context: &minijinja::Value,
    outputs: &Map<String, Json>,
) -> Result<String, String> {
    let output = |name: &str| crate::template::to_value(outputs.get(name).unwrap_or(&Json::Null));
    let context = minijinja::context! {
        desired => output("desired"),
        current => output("current"),
        direction => output("direction"),
        reason => output("reason"),
        ..context.clone()
    };
    match apply.render(&context) {
        Ok(Json::String(script)) => Ok(script),
        Ok(other) => Ok(other.to_string()),
        Err(error) => Err(format!("scale: apply: {}", error.error.message)),
    }
}

/// `scale:` as written (after rendering). Numbers may arrive as numbers or as the text a template
/// rendered; they are read in [`ScaleConfig::input`].
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    description = "A replica decision with Kubernetes HPA's algorithm: `desired = ceil(current × metric / target)`, held by a tolerance, stabilization windows, step limits and `[min, max]`. Outputs `desired`, `current`, `direction` and `reason`."
)]
pub struct ScaleConfig {
    /// Whose recommendations the stabilization windows look back on (`api-{{ event.data.cluster }}`).
    pub key: String,
    /// The replicas running now.
    #[schemars(with = "NumberOrTemplate")]
    pub current: Json,
    /// The observed value per replica (CPU utilisation, requests per second…).
    #[schemars(with = "NumberOrTemplate")]
    pub metric: Json,
    /// The desired value per replica; greater than 0.
    #[schemars(with = "NumberOrTemplate")]
    pub target: Json,
    /// The fewest replicas (default 1).
    #[schemars(with = "Option<NumberOrTemplate>")]
    pub min: Option<Json>,
    /// The most replicas.
    #[schemars(with = "NumberOrTemplate")]
    pub max: Json,
    /// No change while `|metric / target − 1|` is at most this (default 0.1).
    #[schemars(with = "Option<NumberOrTemplate>")]
    pub tolerance: Option<Json>,
    /// `metric` is a total over all replicas (KEDA's `AverageValue`: queue length, requests per
    /// second of the service), divided by `current` to compare with `target`; default false.
    pub total: Option<bool>,
    /// At or below this metric the workload is idle: scale to `min` (to 0 with `min: 0`, once
    /// `cooldown` has passed); above it, scale from 0 (KEDA's activation threshold).
    #[schemars(with = "Option<NumberOrTemplate>")]
    pub activation: Option<Json>,
    /// With `activation` and `min: 0`: how long the metric stays at or below `activation` before
    /// scaling to 0 (default `5m`, KEDA's `cooldownPeriod`).
    #[schemars(with = "Option<crate::workflow::schema::Duration>")]
    pub cooldown: Option<String>,
    /// Scaling up: stabilization window (default `0s`) and the most replicas added at once.
    pub scale_up: Option<BehaviorConfig>,
    /// Scaling down: stabilization window (default `5m`) and the most replicas removed at once.
    pub scale_down: Option<BehaviorConfig>,
    /// A shell script run when the decision changes the count (`{{ desired }}`, `{{ current }}`,
    /// `{{ direction }}`, `{{ reason }}`), escaped like `run`.
    pub apply: Option<String>,
}

/// `scale-up:` / `scale-down:`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BehaviorConfig {
    /// How far back recommendations count (`0s`, `5m`).
    #[schemars(with = "Option<crate::workflow::schema::Duration>")]
    pub stabilization: Option<String>,
    /// The most replicas one decision adds (or removes); none by default.
    #[schemars(with = "Option<NumberOrTemplate>")]
    pub max_step: Option<Json>,
}

/// A number, numeric text, or a template that renders to one.
#[derive(schemars::JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum NumberOrTemplate {
    Number(f64),
    Text(String),
}

/// One direction's rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behavior {
    pub stabilization: Duration,
    pub max_step: Option<u32>,
}

/// The checked inputs of a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleInput {
    pub current: u32,
    pub metric: f64,
    pub target: f64,
    pub min: u32,
    pub max: u32,
    pub tolerance: f64,
    pub up: Behavior,
    pub down: Behavior,
    /// `metric` is a total over the replicas.
    pub total: bool,
    pub activation: Option<f64>,
    pub cooldown: Duration,
    /// Since when the metric has been at or below `activation`, as far as the store knows (the
    /// last reading above it, else the first reading remembered); `None`: no cooldown kept.
    pub idle_since_ms: Option<i64>,
}

/// KEDA's default `cooldownPeriod`.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    None,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::None => "none",
        }
    }
}

/// What a decision came to, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub desired: u32,
    pub current: u32,
    pub direction: Direction,
    /// One sentence: the arithmetic and the rule that held the number.
    pub reason: String,
}

impl Decision {
    /// `desired`, `current`, `direction`, `reason`.
    pub fn outputs(&self) -> Outputs {
        let mut outputs = Outputs::new();
        outputs.insert("desired".to_string(), Json::from(self.desired));
        outputs.insert("current".to_string(), Json::from(self.current));
        outputs.insert(
            "direction".to_string(),
            Json::String(self.direction.as_str().to_string()),
        );
        outputs.insert("reason".to_string(), Json::String(self.reason.clone()));
        outputs
    }
}

/// Parses the rendered config, records the recommendation under its key at `now_ms`, and decides.
pub fn decide(
    config: &ScaleConfig,
    recommendations: &Recommendations,
    now_ms: i64,
) -> Result<Decision, StepError> {
    let input = config.input()?;
    if config.key.trim().is_empty() {
        return Err(StepError::new("scale: `key` is empty"));
    }
    let mut input = input;
    if input.activation.is_some() && input.min == 0 {
        // Each reading leaves a mark: 1 above activation, 0 at or below. Kept for two cooldowns,
        // so that a run of idle readings always reaches back one cooldown.
        let marks = recommendations
            .record(
                &format!("{}#activity", config.key),
                now_ms,
                u32::from(input.active()),
                input.cooldown.saturating_mul(2),
            )
            .map_err(|error| StepError::new(format!("scale: {error}")))?;
        let last_active = marks
            .iter()
            .filter(|mark| mark.replicas == 1)
            .map(|mark| mark.at_ms)
            .max();
        input.idle_since_ms = Some(
            last_active
                .or_else(|| marks.first().map(|mark| mark.at_ms))
                .unwrap_or(now_ms),
        );
    }
    let earlier = match input.recommendation() {
        Some(replicas) => recommendations
            .record(&config.key, now_ms, replicas, input.longest_window())
            .map_err(|error| StepError::new(format!("scale: {error}")))?,
        None => Vec::new(),
    };
    Ok(input.decide(&earlier, now_ms))
}

impl ScaleConfig {
    /// Reads and checks every number; an error names the field.
    pub fn input(&self) -> Result<ScaleInput, StepError> {
        let current = replicas("current", &self.current)?;
        let metric = number("metric", &self.metric)?;
        if metric < 0.0 {
            return Err(StepError::new(format!(
                "scale: `metric` must not be negative, found `{}`",
                format_number(metric)
            )));
        }
        let target = number("target", &self.target)?;
        if target <= 0.0 {
            return Err(StepError::new(format!(
                "scale: `target` must be greater than 0, found `{}`",
                format_number(target)
            )));
        }
        let min = match &self.min {
            Some(value) => replicas("min", value)?,
            None => 1,
        };
        let max = replicas("max", &self.max)?;
        if min > max {
            return Err(StepError::new(format!(
                "scale: `min` ({min}) is greater than `max` ({max})"
            )));
        }
        let tolerance = match &self.tolerance {
            Some(value) => number("tolerance", value)?,
            None => DEFAULT_TOLERANCE,
        };
        if tolerance < 0.0 {
            return Err(StepError::new(format!(
                "scale: `tolerance` must not be negative, found `{}`",
                format_number(tolerance)
            )));
        }
        let activation = match &self.activation {
            Some(value) => Some(number("activation", value)?),
            None => None,
        };
        let cooldown = match self.cooldown.as_deref() {
            Some(text) => parse_duration(text)
                .map_err(|message| StepError::new(format!("scale: `cooldown`: {message}")))?,
            None => DEFAULT_COOLDOWN,
        };
        Ok(ScaleInput {
            current,
            metric,
            target,
            min,
            max,
            tolerance,
            total: self.total.unwrap_or(false),
            activation,
            cooldown,
            idle_since_ms: None,
            up: behavior("scale-up", self.scale_up.as_ref(), Duration::ZERO)?,
            down: behavior(
                "scale-down",
                self.scale_down.as_ref(),
                DEFAULT_SCALE_DOWN_WINDOW,
            )?,
        })
    }
}

fn behavior(
    name: &str,
    config: Option<&BehaviorConfig>,
    default_window: Duration,
) -> Result<Behavior, StepError> {
    let Some(config) = config else {
        return Ok(Behavior {
            stabilization: default_window,
            max_step: None,
        });
    };
    let stabilization = match config.stabilization.as_deref() {
        Some(text) => parse_duration(text).map_err(|message| {
            StepError::new(format!("scale: `{name}.stabilization`: {message}"))
        })?,
        None => default_window,
    };
    let max_step = match &config.max_step {
        Some(value) => {
            let step = replicas(&format!("{name}.max-step"), value)?;
            if step == 0 {
                return Err(StepError::new(format!(
                    "scale: `{name}.max-step` must be at least 1"
                )));
            }
            Some(step)
        }
        None => None,
    };
    Ok(Behavior {
        stabilization,
        max_step,
    })
}

/// A finite number, from a number or its text (templates render to text).
fn number(field: &str, value: &Json) -> Result<f64, StepError> {
    let parsed = match value {
        Json::Number(number) => number.as_f64(),
        Json::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(number) if number.is_finite() => Ok(number),
        _ => {
            let shown = match value {
                Json::String(text) => text.clone(),
                other => other.to_string(),
            };
            Err(StepError::new(format!(
                "scale: `{field}` must be a number, found `{shown}`"
            )))
        }
    }
}

/// A count of replicas: a whole number, not negative.
fn replicas(field: &str, value: &Json) -> Result<u32, StepError> {
    let number = number(field, value)?;
    if number < 0.0 {
        return Err(StepError::new(format!(
            "scale: `{field}` must not be negative, found `{}`",
            format_number(number)
        )));
    }
    if number.fract() != 0.0 || number > f64::from(u32::MAX) {
        return Err(StepError::new(format!(
            "scale: `{field}` must be a whole number of replicas, found `{}`",
            format_number(number)
        )));
    }
    Ok(number as u32)
}

/// `x` rounded to nine decimals. Decimal inputs are not exact in binary: `10 × 0.66 / 0.6` is
/// 11.000000000000002, whose ceiling would be one replica too many, and `0.66 / 0.6 − 1` is a
/// hair above a tolerance of 0.1. No metric is meaningful to nine decimals, so this only removes
/// the noise.
fn snap(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// A number as people write it: `60`, `0.62`.
fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl ScaleInput {
    /// The longest stabilization window: recommendations older than it no longer matter.
    pub fn longest_window(&self) -> Duration {
        self.up.stabilization.max(self.down.stabilization)
    }

    /// Whether the metric is above `activation` (always, without one).
    pub fn active(&self) -> bool {
        self.activation
            .is_none_or(|activation| self.metric > activation)
    }

    /// The metric per replica: the metric, or with `total` the metric over `current`.
    fn per_replica(&self) -> f64 {
        if self.total {
            self.metric / f64::from(self.current)
        } else {
            self.metric
        }
    }

    /// From zero there is no ratio to hold (HPA: `currentReplicas == 0` skips the tolerance).
    fn within_tolerance(&self) -> bool {
        self.current > 0 && snap((self.per_replica() / self.target - 1.0).abs()) <= self.tolerance
    }

    /// `ceil(current × metric / target)` — `ceil(metric / target)` for a total, or from zero —
    /// saturating at `u32::MAX` (the bounds cut it anyway).
    fn proportional(&self) -> u32 {
        let replicas = if self.total || self.current == 0 {
            snap(self.metric / self.target).ceil()
        } else {
            snap(f64::from(self.current) * self.metric / self.target).ceil()
        };
        replicas.min(f64::from(u32::MAX)) as u32
    }

    /// The arithmetic of [`ScaleInput::proportional`], as the reason shows it.
    fn arithmetic(&self, raw: u32) -> String {
        if self.total || self.current == 0 {
            format!(
                "ceil({} / {}) = {raw}",
                format_number(self.metric),
                format_number(self.target)
            )
        } else {
            format!(
                "ceil({} × {} / {}) = {raw}",
                self.current,
                format_number(self.metric),
                format_number(self.target)
            )
        }
    }

    /// What this decision recommends before stabilization, as the windows will remember it: the
    /// current count within the tolerance. `None` when the current count is outside `[min, max]`,
    /// which HPA corrects without looking at the metric, and does not remember.
    pub fn recommendation(&self) -> Option<u32> {
        if self.current < self.min || self.current > self.max || self.current == 0 || !self.active()
        {
            None
        } else if self.within_tolerance() {
            Some(self.current)
        } else {
            Some(self.proportional())
        }
    }

    /// The decision, given the recommendations recorded for this key before `now_ms`.
    pub fn decide(&self, earlier: &[Recommendation], now_ms: i64) -> Decision {
        let current = self.current;
        let decision = |desired: u32, reason: String| Decision {
            desired,
            current,
            direction: match desired.cmp(&current) {
                std::cmp::Ordering::Greater => Direction::Up,
                std::cmp::Ordering::Less => Direction::Down,
                std::cmp::Ordering::Equal => Direction::None,
            },
            reason,
        };
        let min = self.min;
        // Kubernetes HPA: a target scaled to 0 by hand while `minReplicas > 0` is not autoscaled
        // ("scaling is disabled since the replica count of the target is zero"), unless an
        // `activation` says when to wake it.
        if current == 0 && min > 0 && self.activation.is_none() {
            return decision(
                0,
                format!(
                    "current is 0 and min is {min}: scaling is disabled while the target is at 0 \
                     (give `activation` to scale from zero): stay at 0"
                ),
            );
        }
        if let Some(activation) = self.activation
            && !self.active()
        {
            let quiet = format!(
                "metric {} is at or below activation {}",
                format_number(self.metric),
                format_number(activation)
            );
            if current == 0 {
                return decision(0, format!("{quiet}: stay at 0"));
            }
            if min > 0 {
                let action = match min.cmp(&current) {
                    std::cmp::Ordering::Less => format!("scale down {current} → {min} (min)"),
                    std::cmp::Ordering::Greater => format!("scale up {current} → {min} (min)"),
                    std::cmp::Ordering::Equal => format!("stay at {current} (min)"),
                };
                return decision(min, format!("{quiet}: {action}"));
            }
            let idle_ms = self
                .idle_since_ms
                .map_or(0, |since| now_ms.saturating_sub(since));
            let cooldown_ms = i64::try_from(self.cooldown.as_millis()).unwrap_or(i64::MAX);
            if idle_ms >= cooldown_ms {
                return decision(
                    0,
                    format!(
                        "{quiet} for {} (cooldown {}): scale down {current} → 0",
                        format_duration(Duration::from_millis(idle_ms as u64)),
                        format_duration(self.cooldown)
                    ),
                );
            }
            let floor = 1.min(self.max);
            let action = if current > floor {
                format!("scale down {current} → {floor}")
            } else {
                format!("stay at {current}")
            };
            return decision(
                floor.min(current),
                format!(
                    "{quiet} for {} of cooldown {}: {action} before 0",
                    format_duration(Duration::from_millis(idle_ms as u64)),
                    format_duration(self.cooldown)
                ),
            );
        }
        if current == 0 {
            // Scale from zero, HPA's `currentReplicas == 0` branch: `ceil(metric / target)`, the
            // tolerance not applied, at least one replica, within `[min, max]`.
            let raw = self.proportional();
            let floor = min.max(1);
            let mut desired = raw.clamp(floor, self.max.max(floor)).min(self.max);
            let mut rule = format!("within [{min}, {}]", self.max);
            if let Some(step) = self.up.max_step
                && desired > step
            {
                desired = step.max(floor.min(self.max));
                rule = format!("limited to +{step} by scale-up max-step");
            } else if raw > self.max {
                rule = format!("clamped to max {}", self.max);
            } else if raw < floor {
                rule = format!("raised to {floor}");
            }
            return decision(
                desired,
                format!(
                    "scale from zero: {} (tolerance not applied); {rule}; scale up 0 → {desired}",
                    self.arithmetic(raw)
                ),
            );
        }
        if current > self.max {
            let max = self.max;
            return decision(
                max,
                format!("current {current} is above max {max}: scale down {current} → {max}"),
            );
        }
        if current < min {
            return decision(
                min,
                format!("current {current} is below min {min}: scale up {current} → {min}"),
            );
        }
        if self.within_tolerance() {
            let per = if self.total {
                format!(
                    "{} / {current} = {}",
                    format_number(self.metric),
                    format_number(snap(self.per_replica()))
                )
            } else {
                format_number(self.metric)
            };
            return decision(
                current,
                format!(
                    "metric {per} is within {}% of target {}: stay at {current}",
                    format_number(snap(self.tolerance * 100.0)),
                    format_number(self.target)
                ),
            );
        }
        let raw = self.proportional();
        let arithmetic = self.arithmetic(raw);

        // Stabilization, as HPA's `stabilizeRecommendationWithBehaviors`: the new recommendation
        // counts in both windows; a window of 0s holds only the new one.
        let in_window = |window: Duration| {
            let since =
                now_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
            earlier
                .iter()
                .filter(move |recommendation| recommendation.at_ms > since)
                .map(|recommendation| recommendation.replicas)
        };
        let lowest_up = in_window(self.up.stabilization).fold(raw, u32::min);
        let highest_down = in_window(self.down.stabilization).fold(raw, u32::max);
        let stabilized = current.clamp(lowest_up, highest_down);
        let mut rules: Vec<String> = Vec::new();
        let mut held_by = None;
        if stabilized != raw {
            if raw < current {
                rules.push(format!(
                    "but the highest recommendation in the last {} is {highest_down}",
                    format_duration(self.down.stabilization)
                ));
                held_by = Some("scale-down stabilization");
            } else {
                rules.push(format!(
                    "but the lowest recommendation in the last {} is {lowest_up}",
                    format_duration(self.up.stabilization)
                ));
                held_by = Some("scale-up stabilization");
            }
        }

        // Step limits and bounds, as HPA's `convertDesiredReplicasWithBehaviorRate`: whichever is
        // tighter holds the number, and the bound wins a tie.
        let mut desired = stabilized;
        if stabilized > current {
            let step_limit = self.up.max_step.map(|step| current.saturating_add(step));
            let allowed = step_limit.map_or(self.max, |limit| limit.min(self.max));
            if stabilized > allowed {
                desired = allowed;
                held_by = None;
                match (step_limit, self.up.max_step) {
                    (Some(limit), Some(step)) if limit < self.max => {
                        rules.push(format!("limited to +{step} by scale-up max-step"));
                    }
                    _ => rules.push(format!("clamped to max {}", self.max)),
                }
            }
        } else if stabilized < current {
            let step_limit = self.down.max_step.map(|step| current.saturating_sub(step));
            let allowed = step_limit.map_or(self.min, |limit| limit.max(self.min));
            if stabilized < allowed {
                desired = allowed;
                held_by = None;
                match (step_limit, self.down.max_step) {
                    (Some(limit), Some(step)) if limit > self.min => {
                        rules.push(format!("limited to -{step} by scale-down max-step"));
                    }
                    _ => rules.push(format!("clamped to min {}", self.min)),
                }
            }
        }

        let action = match desired.cmp(&current) {
            std::cmp::Ordering::Greater => format!("scale up {current} → {desired}"),
            std::cmp::Ordering::Less => format!("scale down {current} → {desired}"),
            std::cmp::Ordering::Equal => format!("stay at {current}"),
        };
        let reason = if rules.is_empty() {
            format!(
                "{arithmetic}; within [{}, {}]; {action}",
                self.min, self.max
            )
        } else {
            let held = held_by.map(|rule| format!(" ({rule})")).unwrap_or_default();
            format!("{arithmetic}, {}: {action}{held}", rules.join(", "))
        };
        decision(desired, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::compile::testing::{compile, render};
    use serde_json::json;

    const SCALE: &str = "scale:\n  key: api\n  current: 2\n  metric: 90\n  target: 50\n  max: 10";

    #[test]
    fn a_scale_step_checks_apply_and_windows_at_load() {
        assert_eq!(
            compile(&format!("{SCALE}\n  apply: ['{{{{ x }}}}']"), &[]).unwrap_err(),
            "8:14: `scale.apply` must be a shell script (a string)"
        );
        let error = compile(
            &format!("{SCALE}\n  scale-up: {{ stabilization: 5 minutes }}"),
            &[],
        )
        .unwrap_err();
        assert!(
            error.starts_with(
                "8:34: steps[0].scale.scale-up.stabilization: invalid duration `5 minutes`"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_scale_record_shows_apply_as_it_ran_and_its_summary_is_the_reason() {
        let step = compile(&format!("{SCALE}\n  apply: echo {{{{ desired }}}}"), &[]).unwrap();
        // `apply` is rendered apart, once the decision is made.
        let mut rendered = render(&step, json!({}));
        assert!(rendered["scale"].get("apply").is_none(), "{rendered}");
        let outputs = Outputs::from_iter([
            ("desired".to_string(), json!(4)),
            ("direction".to_string(), json!("up")),
            ("reason".to_string(), json!("90/50 of 2")),
        ]);
        let event = crate::event::Event::new("test", "t", json!({}));
        let masker = crate::secrets::Masker::new();
        let cancel = crate::cancel::CancelToken::new();
        let recommendations = crate::state::Recommendations::in_memory();
        let values = minijinja::Value::from(());
        let context = StepContext {
            event: &event,
            depth: 0,
            max_emitted: 1,
            values: &values,
            workspace: std::path::Path::new("."),
            env: &[],
            timeout: Duration::from_secs(1),
            cancel: &cancel,
            templates: crate::template::Templates::from_files(Default::default()),
            masker: &masker,
            output: &|_, _| {},
            state_folder: None,
            recommendations: &recommendations,
        };
        step.action
            .complete_rendered(&mut rendered, &outputs, &context);
        assert_eq!(rendered["scale"]["apply"], "echo '4'");
        assert_eq!(step.action.summary(&outputs).as_deref(), Some("90/50 of 2"));
    }

    fn input(current: u32, metric: f64, target: f64, min: u32, max: u32) -> ScaleInput {
        ScaleInput {
            current,
            metric,
            target,
            min,
            max,
            tolerance: DEFAULT_TOLERANCE,
            up: Behavior {
                stabilization: Duration::ZERO,
                max_step: None,
            },
            down: Behavior {
                stabilization: DEFAULT_SCALE_DOWN_WINDOW,
                max_step: None,
            },
            total: false,
            activation: None,
            cooldown: DEFAULT_COOLDOWN,
            idle_since_ms: None,
        }
    }

    /// Decisions with no history, including the worked examples of the Kubernetes HPA
    /// documentation ("Algorithm details").
    #[test]
    fn decisions_without_history() {
        let cases: &[(&str, ScaleInput, u32, &str)] = &[
            (
                "HPA docs: 200m observed vs 100m target doubles the replicas",
                input(1, 200.0, 100.0, 1, 10),
                2,
                "ceil(1 × 200 / 100) = 2; within [1, 10]; scale up 1 → 2",
            ),
            (
                "HPA docs: 50m observed vs 100m target halves them",
                input(2, 50.0, 100.0, 1, 10),
                1,
                "ceil(2 × 50 / 100) = 1; within [1, 10]; scale down 2 → 1",
            ),
            (
                "HPA walkthrough: 50 replicas at 90 vs a target of 75",
                input(50, 90.0, 75.0, 2, 100),
                60,
                "ceil(50 × 90 / 75) = 60; within [2, 100]; scale up 50 → 60",
            ),
            (
                "within the tolerance band: no change",
                input(4, 0.62, 0.6, 2, 20),
                4,
                "metric 0.62 is within 10% of target 0.6: stay at 4",
            ),
            (
                "exactly on the tolerance's edge: still no change",
                input(10, 0.66, 0.6, 2, 20),
                10,
                "metric 0.66 is within 10% of target 0.6: stay at 10",
            ),
            (
                "just outside the tolerance",
                input(10, 0.67, 0.6, 2, 20),
                12,
                "ceil(10 × 0.67 / 0.6) = 12; within [2, 20]; scale up 10 → 12",
            ),
            (
                "clamped to max",
                input(10, 3.0, 0.6, 2, 20),
                20,
                "ceil(10 × 3 / 0.6) = 50, clamped to max 20: scale up 10 → 20",
            ),
            (
                "clamped to min (a first decision has nothing to stabilize on)",
                input(4, 0.1, 0.6, 2, 20),
                2,
                "ceil(4 × 0.1 / 0.6) = 1, clamped to min 2: scale down 4 → 2",
            ),
            (
                "a current count above max is corrected without the metric",
                input(25, 0.6, 0.6, 2, 20),
                20,
                "current 25 is above max 20: scale down 25 → 20",
            ),
            (
                "a current count below min likewise",
                input(1, 0.6, 0.6, 2, 20),
                2,
                "current 1 is below min 2: scale up 1 → 2",
            ),
            (
                "a metric of 0 goes to min",
                input(5, 0.0, 0.6, 2, 20),
                2,
                "ceil(5 × 0 / 0.6) = 0, clamped to min 2: scale down 5 → 2",
            ),
        ];
        for (name, input, desired, reason) in cases {
            let decision = input.decide(&[], 0);
            assert_eq!(decision.desired, *desired, "{name}");
            assert_eq!(decision.reason, *reason, "{name}");
        }
    }

    #[test]
    fn max_step_limits_each_direction() {
        let mut up = input(4, 1.8, 0.6, 2, 20);
        up.up.max_step = Some(4);
        let decision = up.decide(&[], 0);
        assert_eq!(decision.desired, 8);
        assert_eq!(decision.direction, Direction::Up);
        assert_eq!(
            decision.reason,
            "ceil(4 × 1.8 / 0.6) = 12, limited to +4 by scale-up max-step: scale up 4 → 8"
        );

        let mut down = input(10, 0.12, 0.6, 2, 20);
        down.down.max_step = Some(2);
        let decision = down.decide(&[], 0);
        assert_eq!(decision.desired, 8);
        assert_eq!(
            decision.reason,
            "ceil(10 × 0.12 / 0.6) = 2, limited to -2 by scale-down max-step: scale down 10 → 8"
        );

        // The bound is tighter than the step: the bound is the reason.
        let mut near_max = input(18, 1.8, 0.6, 2, 20);
        near_max.up.max_step = Some(4);
        let decision = near_max.decide(&[], 0);
        assert_eq!(decision.desired, 20);
        assert!(
            decision.reason.contains("clamped to max 20"),
            "{}",
            decision.reason
        );
    }

    /// A sequence of decisions over a simulated clock, each remembered as the store would.
    fn simulate(input: &ScaleInput, readings: &[(i64, u32, f64)]) -> Vec<Decision> {
        let mut history: Vec<Recommendation> = Vec::new();
        readings
            .iter()
            .map(|&(at_ms, current, metric)| {
                let input = ScaleInput {
                    current,
                    metric,
                    ..input.clone()
                };
                let oldest = at_ms - input.longest_window().as_millis() as i64;
                history.retain(|recommendation| recommendation.at_ms >= oldest);
                let decision = input.decide(&history, at_ms);
                if let Some(replicas) = input.recommendation() {
                    history.push(Recommendation { at_ms, replicas });
                }
                decision
            })
            .collect()
    }

    #[test]
    fn scale_down_takes_the_highest_recommendation_in_its_window() {
        let base = input(4, 0.6, 0.6, 2, 20);
        let minute = 60_000;
        let decisions = simulate(
            &base,
            &[
                // Load: 4 replicas at 0.6 → stay, recommendation 4.
                (0, 4, 0.6),
                // Load drops: the raw recommendation is 2, but 4 was recommended 1m ago.
                (minute, 4, 0.2),
                // Still low 4m later: 4 is still within the 5m window.
                (4 * minute, 4, 0.2),
                // 5m and a bit after the 4: only the 2s remain.
                (5 * minute + 1, 4, 0.2),
            ],
        );
        let desired: Vec<u32> = decisions.iter().map(|decision| decision.desired).collect();
        assert_eq!(desired, vec![4, 4, 4, 2]);
        assert_eq!(
            decisions[1].reason,
            "ceil(4 × 0.2 / 0.6) = 2, but the highest recommendation in the last 5m is 4: stay at 4 (scale-down stabilization)"
        );
        assert_eq!(decisions[1].direction, Direction::None);
        assert_eq!(decisions[3].direction, Direction::Down);
    }

    #[test]
    fn a_partial_hold_scales_down_to_the_highest_recent_recommendation() {
        let base = input(10, 0.6, 0.6, 1, 20);
        let decisions = simulate(&base, &[(0, 10, 0.36), (1_000, 10, 0.12)]);
        // 10 × 0.36 / 0.6 = 6: down to 6; then 10 × 0.12 / 0.6 = 2, held at the 6 of 1s ago.
        assert_eq!(decisions[0].desired, 6);
        assert_eq!(decisions[1].desired, 6);
        assert_eq!(
            decisions[1].reason,
            "ceil(10 × 0.12 / 0.6) = 2, but the highest recommendation in the last 5m is 6: scale down 10 → 6 (scale-down stabilization)"
        );
    }

    #[test]
    fn scale_up_takes_the_lowest_recommendation_in_its_window() {
        let mut base = input(4, 0.6, 0.6, 2, 20);
        base.up.stabilization = Duration::from_secs(180);
        let minute = 60_000;
        let decisions = simulate(
            &base,
            &[
                (0, 4, 0.6),
                // A spike: raw 8, but 4 was recommended within 3m.
                (minute, 4, 1.2),
                // 3m after the 4: only the 8 remains in the window.
                (3 * minute + 1, 4, 1.2),
            ],
        );
        let desired: Vec<u32> = decisions.iter().map(|decision| decision.desired).collect();
        assert_eq!(desired, vec![4, 4, 8]);
        assert_eq!(
            decisions[1].reason,
            "ceil(4 × 1.2 / 0.6) = 8, but the lowest recommendation in the last 3m is 4: stay at 4 (scale-up stabilization)"
        );
    }

    #[test]
    fn with_the_default_windows_scale_up_is_immediate() {
        let decisions = simulate(&input(4, 0.6, 0.6, 2, 20), &[(0, 4, 0.3), (1, 4, 1.2)]);
        // A first decision has no earlier recommendation to hold it.
        assert_eq!(decisions[0].desired, 2);
        // Up is not held by the earlier, lower recommendation: the up window is 0s.
        assert_eq!(decisions[1].desired, 8);
    }

    fn config(fields: serde_json::Value) -> ScaleConfig {
        let mut base = serde_json::json!({
            "key": "api", "current": "4", "metric": "0.9", "target": 0.6, "min": 2, "max": 20
        });
        for (key, value) in fields.as_object().unwrap() {
            base[key] = value.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn rendered_numbers_are_read_from_text_and_bad_ones_name_their_field() {
        let parsed = config(serde_json::json!({})).input().unwrap();
        assert_eq!((parsed.current, parsed.metric), (4, 0.9));
        assert_eq!(parsed.down.stabilization, DEFAULT_SCALE_DOWN_WINDOW);
        let cases = [
            (
                serde_json::json!({"metric": "high"}),
                "scale: `metric` must be a number, found `high`",
            ),
            (
                serde_json::json!({"metric": ""}),
                "scale: `metric` must be a number, found ``",
            ),
            (
                serde_json::json!({"target": "0"}),
                "scale: `target` must be greater than 0, found `0`",
            ),
            (
                serde_json::json!({"target": -1}),
                "scale: `target` must be greater than 0, found `-1`",
            ),
            (
                serde_json::json!({"min": 5, "max": 2}),
                "scale: `min` (5) is greater than `max` (2)",
            ),
            (
                serde_json::json!({"current": "-1"}),
                "scale: `current` must not be negative, found `-1`",
            ),
            (
                serde_json::json!({"current": "2.5"}),
                "scale: `current` must be a whole number of replicas, found `2.5`",
            ),
            (
                serde_json::json!({"tolerance": -0.1}),
                "scale: `tolerance` must not be negative, found `-0.1`",
            ),
            (
                serde_json::json!({"scale-down": {"stabilization": "soon"}}),
                "scale: `scale-down.stabilization`: ",
            ),
            (
                serde_json::json!({"scale-up": {"max-step": 0}}),
                "scale: `scale-up.max-step` must be at least 1",
            ),
        ];
        for (fields, message) in cases {
            let error = config(fields.clone()).input().unwrap_err();
            assert!(
                error.message.starts_with(message),
                "{fields}: {}",
                error.message
            );
        }
    }

    #[test]
    fn decide_remembers_per_key() {
        let recommendations = Recommendations::in_memory();
        let first = decide(
            &config(serde_json::json!({"current": 10, "metric": 0.6})),
            &recommendations,
            0,
        )
        .unwrap();
        assert_eq!(first.desired, 10);
        let second = decide(
            &config(serde_json::json!({"current": 10, "metric": 0.12})),
            &recommendations,
            1_000,
        )
        .unwrap();
        assert_eq!(second.desired, 10);
        assert!(
            second.reason.ends_with("(scale-down stabilization)"),
            "{}",
            second.reason
        );
        let other = decide(
            &config(serde_json::json!({"key": "web", "current": 10, "metric": 0.12})),
            &recommendations,
            1_000,
        )
        .unwrap();
        assert_eq!(other.desired, 2);
    }

    fn from_zero(metric: f64, target: f64, min: u32, max: u32) -> ScaleInput {
        ScaleInput {
            activation: Some(0.0),
            ..input(0, metric, target, min, max)
        }
    }

    /// Kubernetes' zero-replica rules (`horizontal.go`, `replica_calculator.go`), each with the
    /// answer the controller gives.
    #[test]
    fn the_three_hpa_zero_replica_cases() {
        // 1. Scale up from zero, min 0, an activation: an external metric with an AverageValue
        //    target (a total) of 12 against 5 per replica is ceil(12 / 5) = 3 replicas
        //    (`GetExternalPerPodMetricReplicas` with 0 replicas: the usage ratio is infinite).
        let total = ScaleInput {
            total: true,
            ..from_zero(12.0, 5.0, 0, 10)
        };
        let decision = total.decide(&[], 0);
        assert_eq!((decision.desired, decision.direction), (3, Direction::Up));
        assert_eq!(
            decision.reason,
            "scale from zero: ceil(12 / 5) = 3 (tolerance not applied); within [0, 10]; scale up 0 → 3"
        );
        // 2. From zero the tolerance is not applied (`getUsageRatioReplicaCount`: with
        //    `currentReplicas == 0` it returns `ceil(usageRatio)`): 1.05 against 1 is within 10%
        //    yet gives 2 replicas.
        let decision = from_zero(1.05, 1.0, 0, 10).decide(&[], 0);
        assert_eq!((decision.desired, decision.direction), (2, Direction::Up));
        // 3. `current: 0` with `min > 0` and no activation: autoscaling is disabled, the target
        //    stays at 0 (`TestZeroReplicas`: minReplicas 3, maxReplicas 5, spec replicas 0 → 0).
        let decision = input(0, 100.0, 90.0, 3, 5).decide(&[], 0);
        assert_eq!((decision.desired, decision.direction), (0, Direction::None));
        assert_eq!(
            decision.reason,
            "current is 0 and min is 3: scaling is disabled while the target is at 0 (give \
             `activation` to scale from zero): stay at 0"
        );
        // …unless `activation` says otherwise: above it, from 0 to at least min.
        let decision = from_zero(100.0, 90.0, 3, 5).decide(&[], 0);
        assert_eq!(decision.desired, 3);
    }

    #[test]
    fn a_total_is_divided_by_the_replicas() {
        // 30 requests/s over 3 replicas against 5 per replica: ceil(30 / 5) = 6.
        let total = ScaleInput {
            total: true,
            ..input(3, 30.0, 5.0, 1, 20)
        };
        let decision = total.decide(&[], 0);
        assert_eq!(decision.desired, 6);
        assert_eq!(
            decision.reason,
            "ceil(30 / 5) = 6; within [1, 20]; scale up 3 → 6"
        );
        // 31 over 6 is 5.17 per replica: within 10% of 5.
        let within = ScaleInput {
            total: true,
            ..input(6, 31.0, 5.0, 1, 20)
        };
        assert_eq!(
            within.decide(&[], 0).reason,
            "metric 31 / 6 = 5.166666667 is within 10% of target 5: stay at 6"
        );
    }

    #[test]
    fn below_activation_scales_to_min_and_to_zero_only_after_the_cooldown() {
        let idle = ScaleInput {
            activation: Some(1.0),
            ..input(4, 0.5, 5.0, 2, 10)
        };
        let decision = idle.decide(&[], 0);
        assert_eq!(decision.desired, 2);
        assert_eq!(
            decision.reason,
            "metric 0.5 is at or below activation 1: scale down 4 → 2 (min)"
        );
        let minute = 60_000;
        let to_zero = ScaleInput {
            min: 0,
            idle_since_ms: Some(0),
            ..idle
        };
        let waiting = to_zero.decide(&[], 2 * minute);
        assert_eq!((waiting.desired, waiting.direction), (1, Direction::Down));
        assert_eq!(
            waiting.reason,
            "metric 0.5 is at or below activation 1 for 2m of cooldown 5m: scale down 4 → 1 before 0"
        );
        let done = to_zero.decide(&[], 5 * minute);
        assert_eq!(done.desired, 0);
        assert_eq!(
            done.reason,
            "metric 0.5 is at or below activation 1 for 5m (cooldown 5m): scale down 4 → 0"
        );
        // At 0 and still idle: nothing to do.
        let asleep = ScaleInput {
            current: 0,
            ..to_zero
        };
        assert_eq!(asleep.decide(&[], 9 * minute).desired, 0);
    }

    #[test]
    fn the_cooldown_counts_from_the_last_active_reading_in_the_store() {
        let recommendations = Recommendations::in_memory();
        let minute = 60_000;
        let config = |current: u32, metric: f64| {
            config(json!({
                "key": "q", "current": current, "metric": metric, "target": 10, "min": 0,
                "max": 10, "activation": 0, "total": true, "cooldown": "5m",
            }))
        };
        let at = |ms: i64, current: u32, metric: f64| {
            super::decide(&config(current, metric), &recommendations, ms)
                .unwrap()
                .desired
        };
        assert_eq!(at(0, 0, 25.0), 3, "woken from zero");
        assert_eq!(at(minute, 3, 0.0), 1, "idle, cooldown running");
        assert_eq!(at(4 * minute, 1, 0.0), 1, "idle 4m of 5m");
        assert_eq!(
            at(5 * minute, 1, 0.0),
            0,
            "idle 5m since the active reading at 0"
        );
        assert_eq!(at(6 * minute, 0, 0.0), 0, "asleep");
        assert_eq!(at(7 * minute, 0, 4.0), 1, "woken again");
    }
}
