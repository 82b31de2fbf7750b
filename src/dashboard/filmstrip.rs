//! The filmstrip: the sample grids a dashboard keeps so `[` and `]` can step back through the
//! run's digits, and which of them is shown. One grid per epoch (thinned evenly on long runs)
//! and the latest few are kept; everything else is let go as newer grids come.

use crate::protocol::SampleGrid;

/// The latest grids, kept whatever their epoch.
pub const RECENT_GRIDS: usize = 8;

/// Epoch grids kept before the latest few. Past this, every other epoch's grid goes, so the
/// kept epochs stay evenly spaced (every epoch, then every 2nd, 4th, ...). Memory: a grid is
/// `run.sample_count` x 784 bytes (the default 64 digits: 50 KB; the most, 256: 200 KB), so the
/// filmstrip holds at most `EPOCH_GRIDS + RECENT_GRIDS` = 72 grids: 3.6 MB by default, 14.5 MB
/// at most.
pub const EPOCH_GRIDS: usize = 64;

/// A kept grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub grid: SampleGrid,
    /// Kept as this epoch's grid: the newest grid when the epoch ended, or the epoch's PNG.
    pub epoch: Option<u32>,
}

/// What a step through the filmstrip did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilmMove {
    /// Now showing the kept grid of this step.
    Shown(u64),
    /// Back to the live grid.
    Live,
    /// Already showing the live grid: nothing newer.
    AlreadyLive,
    /// Nothing older is kept.
    Oldest,
    /// No grid is kept yet.
    Empty,
}

/// Where the grid shown sits in the filmstrip, when it is not the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilmPosition {
    pub step: u64,
    /// The epoch the grid belongs to, if known.
    pub epoch: Option<u32>,
    /// 1-based, oldest first.
    pub index: usize,
    pub count: usize,
}

impl FilmPosition {
    /// How the digit panel's title says it: `step 600 · epoch 1 · 3/12`.
    pub fn label(&self) -> String {
        let epoch = self
            .epoch
            .map_or(String::new(), |e| format!(" · epoch {e}"));
        format!("step {}{epoch} · {}/{}", self.step, self.index, self.count)
    }
}

/// The kept grids, oldest first, and which one is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Filmstrip {
    /// One per step, by step.
    frames: Vec<Frame>,
    /// Epoch grids are kept for the epochs that are multiples of this.
    epoch_stride: u32,
    /// The step of the grid shown, or `None` for the live grid.
    viewing: Option<u64>,
}

impl Default for Filmstrip {
    fn default() -> Self {
        Filmstrip::new()
    }
}

impl Filmstrip {
    pub fn new() -> Filmstrip {
        Filmstrip {
            frames: Vec::new(),
            epoch_stride: 1,
            viewing: None,
        }
    }

    /// A grid as it came from the run. A grid of a step already kept replaces its pixels.
    pub fn push(&mut self, grid: SampleGrid) {
        self.insert(grid, None);
    }

    /// A grid known to be `epoch`'s (a run folder's `samples/epoch-NNN.png`).
    pub fn push_epoch(&mut self, epoch: u32, grid: SampleGrid) {
        self.insert(grid, Some(epoch));
    }

    /// `epoch` ended at `step`: the newest grid drawn by then becomes its grid, unless it
    /// already is an earlier epoch's (no grid came during this one).
    pub fn epoch_done(&mut self, epoch: u32, step: u64) {
        if let Some(frame) = self
            .frames
            .iter_mut()
            .rev()
            .find(|f| f.grid.step <= step)
            .filter(|f| f.epoch.is_none())
        {
            frame.epoch = Some(epoch);
        }
        self.prune();
    }

    fn insert(&mut self, grid: SampleGrid, epoch: Option<u32>) {
        match self
            .frames
            .binary_search_by_key(&grid.step, |f| f.grid.step)
        {
            Ok(i) => {
                if let Some(frame) = self.frames.get_mut(i) {
                    frame.grid = grid;
                    frame.epoch = epoch.or(frame.epoch);
                }
            }
            Err(i) => self.frames.insert(i, Frame { grid, epoch }),
        }
        self.prune();
    }

    /// Lets go of what the bounds do not keep; a shown grid let go gives way to its nearest.
    fn prune(&mut self) {
        loop {
            let recent_from = self.frames.len().saturating_sub(RECENT_GRIDS);
            let stride = self.epoch_stride;
            let mut index = 0;
            self.frames.retain(|f| {
                let keep = index >= recent_from || f.epoch.is_some_and(|e| e % stride == 0);
                index += 1;
                keep
            });
            let old_epochs = self.frames.len().saturating_sub(RECENT_GRIDS);
            if old_epochs <= EPOCH_GRIDS {
                break;
            }
            self.epoch_stride = self.epoch_stride.saturating_mul(2);
        }
        if let Some(step) = self.viewing
            && self.index_of(step).is_none()
        {
            self.viewing = self
                .frames
                .iter()
                .min_by_key(|f| f.grid.step.abs_diff(step))
                .map(|f| f.grid.step);
        }
    }

    fn index_of(&self, step: u64) -> Option<usize> {
        self.frames
            .binary_search_by_key(&step, |f| f.grid.step)
            .ok()
    }

    /// One grid back: from the live grid (drawn at `live_step`), the newest kept grid older
    /// than it.
    pub fn older(&mut self, live_step: Option<u64>) -> FilmMove {
        if self.frames.is_empty() {
            return FilmMove::Empty;
        }
        let from = self.viewing.or(live_step);
        let target = self
            .frames
            .iter()
            .rev()
            .find(|f| from.is_none_or(|s| f.grid.step < s));
        match target {
            Some(frame) => {
                let step = frame.grid.step;
                self.viewing = Some(step);
                FilmMove::Shown(step)
            }
            None => FilmMove::Oldest,
        }
    }

    /// One grid forward; past the newest kept grid older than the live one, back to live.
    pub fn newer(&mut self, live_step: Option<u64>) -> FilmMove {
        let Some(from) = self.viewing else {
            return FilmMove::AlreadyLive;
        };
        let next = self
            .frames
            .iter()
            .find(|f| f.grid.step > from)
            .map(|f| f.grid.step)
            .filter(|&s| live_step.is_none_or(|live| s < live));
        self.viewing = next;
        next.map_or(FilmMove::Live, FilmMove::Shown)
    }

    /// Shows the live grid again; true if an older one was shown.
    pub fn go_live(&mut self) -> bool {
        self.viewing.take().is_some()
    }

    /// The kept grid shown, or `None` when the live grid is.
    pub fn shown(&self) -> Option<&Frame> {
        self.frames.get(self.index_of(self.viewing?)?)
    }

    /// Where the shown grid sits, when it is not the live one; `steps_per_epoch` names the
    /// epoch of a grid that is not an epoch's own.
    pub fn position(&self, steps_per_epoch: u64) -> Option<FilmPosition> {
        let index = self.index_of(self.viewing?)?;
        let frame = self.frames.get(index)?;
        let step = frame.grid.step;
        let epoch = frame.epoch.or_else(|| {
            (steps_per_epoch > 0 && step > 0)
                .then(|| u32::try_from((step - 1) / steps_per_epoch + 1).ok())
                .flatten()
        });
        Some(FilmPosition {
            step,
            epoch,
            index: index + 1,
            count: self.frames.len(),
        })
    }

    /// The kept grids, oldest first.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(step: u64) -> SampleGrid {
        SampleGrid {
            step,
            width: 2,
            height: 2,
            pixels: vec![step as u8; 4],
            labels: None,
        }
    }

    fn steps(film: &Filmstrip) -> Vec<u64> {
        film.frames().iter().map(|f| f.grid.step).collect()
    }

    #[test]
    fn stepping_goes_back_from_live_then_forward_to_live() {
        let mut film = Filmstrip::new();
        assert_eq!(film.older(None), FilmMove::Empty);
        for step in [100, 200, 300] {
            film.push(grid(step));
        }
        // The live grid is the newest kept one: back skips it.
        let live = Some(300);
        assert_eq!(film.newer(live), FilmMove::AlreadyLive);
        assert_eq!(film.older(live), FilmMove::Shown(200));
        assert_eq!(film.older(live), FilmMove::Shown(100));
        assert_eq!(film.older(live), FilmMove::Oldest);
        assert_eq!(film.shown().map(|f| f.grid.step), Some(100));
        assert_eq!(
            film.position(0),
            Some(FilmPosition {
                step: 100,
                epoch: None,
                index: 1,
                count: 3
            })
        );
        assert_eq!(film.newer(live), FilmMove::Shown(200));
        assert_eq!(film.newer(live), FilmMove::Live);
        assert_eq!(film.shown(), None);
        assert_eq!(film.position(0), None);
        // A grid that comes while an older one is shown does not move the view.
        assert_eq!(film.older(live), FilmMove::Shown(200));
        film.push(grid(400));
        assert_eq!(film.shown().map(|f| f.grid.step), Some(200));
        assert_eq!(film.newer(Some(400)), FilmMove::Shown(300));
        assert_eq!(film.newer(Some(400)), FilmMove::Live);
        assert_eq!(film.older(Some(400)), FilmMove::Shown(300));
        assert!(film.go_live());
        assert!(!film.go_live());
    }

    #[test]
    fn only_the_latest_grids_and_one_per_epoch_are_kept() {
        let mut film = Filmstrip::new();
        // Three epochs of 1000 steps, a grid every 100 steps.
        for epoch in 1..=3u32 {
            for i in 1..=10 {
                film.push(grid(u64::from(epoch - 1) * 1000 + i * 100));
            }
            film.epoch_done(epoch, u64::from(epoch) * 1000);
        }
        // Epochs 1 and 2 by their last grid, then the latest eight.
        assert_eq!(
            steps(&film),
            vec![1000, 2000, 2300, 2400, 2500, 2600, 2700, 2800, 2900, 3000]
        );
        let epochs: Vec<Option<u32>> = film.frames().iter().map(|f| f.epoch).collect();
        assert_eq!(epochs.first(), Some(&Some(1)));
        assert_eq!(epochs.get(1), Some(&Some(2)));
        assert_eq!(epochs.last(), Some(&Some(3)));
        // An epoch without a grid of its own does not take an earlier epoch's.
        film.epoch_done(4, 4000);
        assert_eq!(film.frames().last().and_then(|f| f.epoch), Some(3));
    }

    #[test]
    fn a_long_run_thins_its_epoch_grids_evenly_and_stays_bounded() {
        let mut film = Filmstrip::new();
        for epoch in 1..=1000u32 {
            film.push(grid(u64::from(epoch) * 10));
            film.epoch_done(epoch, u64::from(epoch) * 10);
            assert!(film.frames().len() <= EPOCH_GRIDS + RECENT_GRIDS);
        }
        let old: Vec<u32> = film
            .frames()
            .iter()
            .take(film.frames().len() - RECENT_GRIDS)
            .filter_map(|f| f.epoch)
            .collect();
        assert!(old.len() > EPOCH_GRIDS / 2, "{old:?}");
        // Evenly spaced from the start of the run.
        let gap = old.first().copied().unwrap_or(0);
        assert!(gap > 1);
        assert!(old.windows(2).all(|w| w[1] - w[0] == gap), "{old:?}");
        assert_eq!(steps(&film).last(), Some(&10_000));
    }

    #[test]
    fn a_shown_grid_let_go_gives_way_to_its_nearest() {
        let mut film = Filmstrip::new();
        for step in 1..=RECENT_GRIDS as u64 {
            film.push(grid(step));
        }
        let live = Some(RECENT_GRIDS as u64);
        while film.older(live) != FilmMove::Oldest {}
        assert_eq!(film.shown().map(|f| f.grid.step), Some(1));
        // Grid 1 was no epoch's: it falls out of the latest few and the view moves to 2.
        film.push(grid(100));
        assert_eq!(film.shown().map(|f| f.grid.step), Some(2));
    }

    #[test]
    fn a_grid_of_a_kept_step_replaces_its_pixels_and_keeps_its_epoch() {
        let mut film = Filmstrip::new();
        film.push_epoch(1, grid(4));
        film.push(SampleGrid {
            pixels: vec![9; 4],
            ..grid(4)
        });
        assert_eq!(film.frames().len(), 1);
        assert_eq!(film.frames().first().map(|f| f.epoch), Some(Some(1)));
        assert_eq!(
            film.frames().first().map(|f| f.grid.pixels.clone()),
            Some(vec![9; 4])
        );
        // Grids out of order land in step order.
        film.push(grid(2));
        assert_eq!(steps(&film), vec![2, 4]);
    }

    #[test]
    fn a_position_names_the_epoch_it_knows_or_can_tell() {
        let mut film = Filmstrip::new();
        film.push_epoch(3, grid(40));
        film.push(grid(45));
        film.push(grid(50));
        film.older(Some(50));
        let at = film.position(10);
        assert_eq!(
            at.map(|p| p.label()),
            Some("step 45 · epoch 5 · 2/3".into())
        );
        film.older(Some(50));
        // An epoch grid says its own epoch, whatever the epoch length says.
        assert_eq!(
            film.position(10).map(|p| p.label()),
            Some("step 40 · epoch 3 · 1/3".into())
        );
        film.newer(Some(50));
        // Unknown epoch length: no epoch.
        assert_eq!(
            film.position(0).map(|p| p.label()),
            Some("step 45 · 2/3".into())
        );
    }
}
