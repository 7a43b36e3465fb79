//! The reconcile loop: watch + timer + webhook -> newest head -> validate ->
//! plan -> apply. Each pass starts from "what is the newest head?".
