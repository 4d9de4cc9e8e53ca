using System.Diagnostics;
using System.Globalization;

namespace Numalloc.Bench.Drill;

/// <summary>
/// Runs a scenario against a target while the workload runs: steady steps wait, hotplug steps call
/// the target; a sampler records throughput every 100 ms and drives the progress display; each
/// step's latency, failures and counter differences become a row of the report.
/// </summary>
internal sealed class DrillRunner
{
    private static readonly TimeSpan s_sampleInterval = TimeSpan.FromMilliseconds(100);

    private readonly DrillOptions _options;
    private readonly DrillScenario _scenario;
    private readonly IDrillTarget _target;
    private readonly DrillProgress _progress;

    public DrillRunner(DrillOptions options, DrillScenario scenario, IDrillTarget target, DrillProgress progress)
    {
        _options = options;
        _scenario = scenario;
        _target = target;
        _progress = progress;
    }

    /// <summary>Test hook: called with the workload once it runs (e.g. to corrupt an object).</summary>
    public Action<DrillWorkload>? OnWorkloadStarted { get; init; }

    /// <summary>Runs every step and returns the report.</summary>
    public DrillReport Run()
    {
        IReadOnlyList<DrillStep> steps = _scenario.Steps;
        int openSteady = steps.Count(s => s.Kind == DrillStepKind.Steady && s.Duration is null);
        TimeSpan steadyShare = openSteady == 0 ? TimeSpan.Zero : _options.Duration / openSteady;

        using DrillWorkload? workload = _target.Heap is null ? null : new DrillWorkload(_target.Heap, _options, _options.Nodes, steps.Count);
        var clock = Stopwatch.StartNew();
        var timeline = new List<ThroughputSample>();
        var reports = new List<DrillStepReport>();
        long lastOps = 0;
        TimeSpan lastSample = TimeSpan.Zero;
        long migrated = 0, toMigrate = 0;
        var state = new DrillProgressState(0, steps.Count, "starting", 0, 0, 0, 0);
        var stateLock = new Lock();

        long Operations() => workload?.Operations ?? _target.AllocationCount ?? 0;

        workload?.Start();
        if (workload is not null)
            OnWorkloadStarted?.Invoke(workload);

        using var sampling = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!sampling.Token.WaitHandle.WaitOne(s_sampleInterval))
            {
                TimeSpan now = clock.Elapsed;
                long ops = Operations();
                double rate = (ops - lastOps) / Math.Max(1e-6, (now - lastSample).TotalSeconds);
                (lastOps, lastSample) = (ops, now);
                lock (stateLock)
                {
                    timeline.Add(new ThroughputSample(now.TotalSeconds, rate));
                    state = state with
                    {
                        OpsPerSecond = rate,
                        PagesMigrated = Interlocked.Read(ref migrated),
                        PagesToMigrate = Interlocked.Read(ref toMigrate),
                        Failures = workload?.Failures ?? 0,
                    };
                    _progress.Update(state);
                }
            }
        }) { IsBackground = true, Name = "drill sampler" };
        sampler.Start();

        for (int i = 0; i < steps.Count; i++)
        {
            DrillStep step = steps[i];
            int number = i + 1;
            lock (stateLock)
                state = state with { StepNumber = number, Step = step.Text, PagesMigrated = 0, PagesToMigrate = 0 };
            Interlocked.Exchange(ref migrated, 0);
            Interlocked.Exchange(ref toMigrate, 0);
            if (workload is not null)
                workload.Step = number;

            DrillCounters before = _target.ReadCounters();
            long opsBefore = Operations();
            TimeSpan start = clock.Elapsed;
            DrillOutcome outcome = step.Kind == DrillStepKind.Steady
                ? Steady(step.Duration ?? steadyShare)
                : _target.Execute(step, (done, total) =>
                {
                    Interlocked.Exchange(ref migrated, done);
                    Interlocked.Exchange(ref toMigrate, total);
                });
            TimeSpan duration = clock.Elapsed - start;
            long ops = Operations() - opsBefore;
            DrillCounters delta = _target.ReadCounters() - before;
            LatencyHistogram latency = workload?.LatencyOf(number) ?? new LatencyHistogram();
            (long expectedFailures, long spuriousFailures) = workload?.FailuresOf(number) ?? (0, 0);

            var report = new DrillStepReport(number, step.Text, start, duration)
            {
                Hotplug = step.Kind != DrillStepKind.Steady,
                Result = outcome.Result,
                Expected = step.Kind == DrillStepKind.Steady ? "ok" : step.Expect,
                Detail = outcome.Detail,
                OpsPerSecond = ops / Math.Max(1e-6, duration.TotalSeconds),
                P50Ns = latency.Percentile(50),
                P99Ns = latency.Percentile(99),
                P999Ns = latency.Percentile(99.9),
                PagesMigrated = Math.Max(outcome.PagesMigrated, delta.PagesMigrated),
                DrainsRemote = delta.DrainsRemote,
                DrainsByOwner = delta.DrainsByOwner,
                DrainsCoalesced = delta.DrainsCoalesced,
                ReaderRestarts = delta.ReaderRestarts,
                ExpectedFailures = expectedFailures,
                SpuriousFailures = spuriousFailures,
            };
            reports.Add(report);
            lock (stateLock)
                _progress.StepDone(report);
        }

        sampling.Cancel();
        sampler.Join();
        workload?.Stop();
        // Failures counted after the last step closed (while stopping) belong to it.
        if (workload is not null && reports.Count > 0)
        {
            (long e, long s) = workload.FailuresOf(reports.Count);
            reports[^1] = reports[^1] with { ExpectedFailures = e, SpuriousFailures = s };
        }

        var mismatches = new List<string>(workload?.Mismatches ?? []);
        mismatches.AddRange(_target.VerifyAndRelease());
        string title = string.Create(CultureInfo.InvariantCulture,
            $"{_target.Description}; {(workload is null ? "attached: the process's own workload" : $"{_options.Threads} workers, sizes {_options.SmallMin}-{_options.SmallMax} and {_options.LargeMin}-{_options.LargeMax} B, seed {_options.Seed}")}");
        return new DrillReport(title, reports, timeline, mismatches);
    }

    private static DrillOutcome Steady(TimeSpan duration)
    {
        Thread.Sleep(duration);
        return new DrillOutcome("ok", null, 0);
    }
}
