//! Learning-rate schedules.

use serde::{Deserialize, Serialize};

/// How the learning rate changes with the step count after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// `base · decay_rate^(step / decay_steps)`, decaying smoothly.
    Exponential {
        /// Factor applied over each `decay_steps`.
        decay_rate: f64,
        /// Steps over which the rate falls by `decay_rate`.
        decay_steps: u64,
    },
    /// `base · gamma^⌊step / step_size⌋`, in stairs.
    Step {
        /// Steps per stair.
        step_size: u64,
        /// Factor applied at each stair.
        gamma: f64,
    },
    /// Half a cosine from `base` at step 0 down to `min_lr` at
    /// `total_steps`, then `min_lr`.
    Cosine {
        /// Length of the decay in steps.
        total_steps: u64,
        /// The rate at the end.
        min_lr: f64,
    },
}

/// A learning rate: a base value, a schedule, and an optional linear
/// warm-up before the schedule starts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearningRate {
    /// The rate the schedule starts from.
    pub base: f64,
    /// How it changes after warm-up.
    pub schedule: Schedule,
    /// Steps of linear warm-up from `base / warmup_steps` to `base`;
    /// 0 for none.
    pub warmup_steps: u64,
}

impl LearningRate {
    /// A constant rate.
    pub fn constant(base: f64) -> Self {
        LearningRate { base, schedule: Schedule::Constant, warmup_steps: 0 }
    }

    /// The rate for the step that follows `steps_taken` earlier steps.
    ///
    /// # Example
    ///
    /// ```
    /// use ferrochem_nn::{LearningRate, Schedule};
    ///
    /// let lr = LearningRate { base: 1.0, schedule: Schedule::Step { step_size: 10, gamma: 0.5 }, warmup_steps: 2 };
    /// assert_eq!(lr.at(0), 0.5); // warming up
    /// assert_eq!(lr.at(2), 1.0);
    /// assert_eq!(lr.at(12), 0.5);
    /// ```
    pub fn at(&self, steps_taken: u64) -> f64 {
        if steps_taken < self.warmup_steps {
            return self.base * (steps_taken + 1) as f64 / self.warmup_steps as f64;
        }
        let step = steps_taken - self.warmup_steps;
        match self.schedule {
            Schedule::Constant => self.base,
            Schedule::Exponential { decay_rate, decay_steps } => {
                self.base * decay_rate.powf(step as f64 / decay_steps.max(1) as f64)
            }
            Schedule::Step { step_size, gamma } => {
                self.base * gamma.powi(i32::try_from(step / step_size.max(1)).unwrap_or(i32::MAX))
            }
            Schedule::Cosine { total_steps, min_lr } => {
                let progress = (step as f64 / total_steps.max(1) as f64).min(1.0);
                min_lr
                    + 0.5 * (self.base - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        let exp = LearningRate {
            base: 2.0,
            schedule: Schedule::Exponential { decay_rate: 0.5, decay_steps: 4 },
            warmup_steps: 0,
        };
        assert_eq!(exp.at(0), 2.0);
        assert!((exp.at(2) - 2.0 * 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(exp.at(8), 0.5);
        let cos = LearningRate {
            base: 1.0,
            schedule: Schedule::Cosine { total_steps: 10, min_lr: 0.1 },
            warmup_steps: 0,
        };
        assert_eq!(cos.at(0), 1.0);
        assert!((cos.at(5) - 0.55).abs() < 1e-15);
        assert!((cos.at(10) - 0.1).abs() < 1e-15);
        assert!((cos.at(100) - 0.1).abs() < 1e-15);
        let warm = LearningRate { warmup_steps: 4, ..LearningRate::constant(1.0) };
        assert_eq!([warm.at(0), warm.at(3), warm.at(4)], [0.25, 1.0, 1.0]);
    }
}
