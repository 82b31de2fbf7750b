//! Parameter gradients taken off a backward pass's critical path: inside `with_deferred`, a
//! layer hands the work of its parameters' gradients to the pool (`add_param_grads`) and goes on
//! with its input's gradient, which the layers before it wait for. The pool's other thread takes
//! the handed-over work up whenever it would otherwise wait (on a zero-filled buffer, a batch
//! norm's serial part, a small op); the gradients are added after the pass, in the order the
//! layers handed them over. Outside `with_deferred` the work runs where it is handed over.
//!
//! Either way each gradient gets the same values: the work is the same sums, and it adds them
//! into gradients nothing else adds to in the pass.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dfdx::prelude::*;

use super::kernels;

/// Adds computed gradients into dfdx's.
pub type Apply = Box<dyn FnOnce(&mut Gradients<f32, Cpu>) -> Result<(), CpuError> + Send>;

/// What handed-over work gives: what adds its gradients, or how it panicked.
type Outcome = std::thread::Result<Apply>;

/// One piece of handed-over work, set once it is done.
#[derive(Default)]
struct Handed {
    done: AtomicBool,
    outcome: Mutex<Option<Outcome>>,
}

thread_local! {
    /// The work handed over on this thread inside the innermost `with_deferred` (`None` outside).
    static HANDED: RefCell<Option<Vec<Arc<Handed>>>> = const { RefCell::new(None) };
}

/// Computes a layer's parameter gradients and adds them into `grads`: `work` computes them and
/// gives what adds them. Inside `with_deferred` it goes to the pool, else it runs here and now.
pub fn add_param_grads(
    grads: &mut Gradients<f32, Cpu>,
    work: impl FnOnce() -> Apply + Send + 'static,
) -> Result<(), CpuError> {
    let listed = HANDED.with(|h| {
        h.borrow_mut().as_mut().map(|list| {
            let handed = Arc::new(Handed::default());
            list.push(handed.clone());
            handed
        })
    });
    let Some(handed) = listed else {
        return work()(grads);
    };
    rayon::spawn(move || {
        // Beside the pass, for the op timings.
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| kernels::one_side(work)));
        *handed
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        handed.done.store(true, Ordering::Release);
    });
    Ok(())
}

/// Puts back what `HANDED` held when a `with_deferred` began, however it ends (an error, a
/// panic): work handed over and not yet added is dropped with the gradients it was for.
struct Restore(Option<Vec<Arc<Handed>>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.0.take();
        HANDED.with(|h| *h.borrow_mut() = outer);
    }
}

/// Runs `backward` (a backward pass, giving its gradients) with parameter gradients handed to
/// the pool, then waits for each piece, taking up pool work meanwhile, and adds its gradients.
pub fn with_deferred(
    backward: impl FnOnce() -> Gradients<f32, Cpu>,
) -> Result<Gradients<f32, Cpu>, CpuError> {
    let outer = HANDED.with(|h| h.borrow_mut().replace(Vec::new()));
    let _restore = Restore(outer);
    let mut grads = backward();
    let handed = HANDED.with(|h| h.borrow_mut().replace(Vec::new()));
    for piece in handed.unwrap_or_default() {
        kernels::help_until(&piece.done);
        let outcome = piece
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match outcome {
            Some(Ok(apply)) => apply(&mut grads)?,
            Some(Err(panicked)) => panic::resume_unwind(panicked),
            // `done` is set only after the outcome is stored.
            None => unreachable!("handed-over work done without an outcome"),
        }
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handed-over work that adds `value` to the gradient of `t`.
    fn adds(t: &Tensor<Rank1<3>, f32, Cpu>, value: f32) -> impl FnOnce() -> Apply + Send + 'static {
        let ghost = t.ghost();
        move || {
            Box::new(move |grads: &mut Gradients<f32, Cpu>| {
                grads
                    .get_or_alloc_mut(&ghost)?
                    .iter_mut()
                    .for_each(|g| *g += value);
                Ok(())
            })
        }
    }

    #[test]
    fn handed_over_work_is_added_after_the_pass_and_inline_work_at_once() {
        let dev: Cpu = Default::default();
        let (a, b) = (dev.zeros::<Rank1<3>>(), dev.zeros::<Rank1<3>>());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let grads = pool.install(|| {
            with_deferred(|| {
                let mut grads = Gradients::leaky();
                add_param_grads(&mut grads, adds(&a, 1.0)).unwrap();
                add_param_grads(&mut grads, adds(&b, 2.0)).unwrap();
                add_param_grads(&mut grads, adds(&a, 3.0)).unwrap();
                // Inside the pass, nothing is added yet.
                assert!(
                    grads
                        .get_or_alloc_mut(&a)
                        .unwrap()
                        .iter()
                        .all(|&g| g == 0.0)
                );
                grads
            })
            .unwrap()
        });
        assert_eq!(grads.get(&a).as_vec(), [4.0; 3]);
        assert_eq!(grads.get(&b).as_vec(), [2.0; 3]);
        // Outside `with_deferred` the work runs at once.
        let mut grads = Gradients::leaky();
        add_param_grads(&mut grads, adds(&a, 5.0)).unwrap();
        assert_eq!(grads.get(&a).as_vec(), [5.0; 3]);
    }

    #[test]
    fn a_panic_in_handed_over_work_reaches_the_pass_and_leaves_no_state_behind() {
        let dev: Cpu = Default::default();
        let a = dev.zeros::<Rank1<3>>();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            with_deferred(|| {
                let mut grads = Gradients::leaky();
                add_param_grads(&mut grads, || -> Apply { panic!("kernel failed") }).unwrap();
                grads
            })
        }));
        let message = caught
            .err()
            .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        assert_eq!(message.as_deref(), Some("kernel failed"));
        // The thread is outside any `with_deferred` again: work runs at once.
        let mut grads = Gradients::leaky();
        add_param_grads(&mut grads, adds(&a, 1.0)).unwrap();
        assert_eq!(grads.get(&a).as_vec(), [1.0; 3]);
    }
}
