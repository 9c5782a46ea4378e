// End-to-end tests each run a lab and the CLI in scaled time; run side by side on two cores, a CPU stall
// of one becomes minutes of simulated time for another. One at a time keeps simulated time honest.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
