using Numalloc.Bench.Drill;

namespace Numalloc.Tests.Drill;

/// <summary>The drill's engine against a stand-in target (NativeMemory, scripted hotplug results); the real heap's drill runs in DrillEndToEndTests.</summary>
[NonParallelizable]
public sealed unsafe class DrillRunnerTests
{
    private sealed class NativeMovable(int length) : IDrillMovable
    {
        private readonly byte* _memory = (byte*)NativeMemory.Alloc((nuint)length);
        public int Length => length;
        public byte* Pin() => _memory;
        public void Unpin() { }
        public void Free() => NativeMemory.Free(_memory);
    }

    private sealed class NativeHeap : IDrillHeap
    {
        private long _live;
        public long Live => Interlocked.Read(ref _live);
        public void* TryAllocate(nuint size) { Interlocked.Increment(ref _live); return NativeMemory.Alloc(size); }
        public void* TryAllocateOnNode(nuint size, int node, out bool failureExpected)
        {
            failureExpected = node == 3;
            return node == 3 ? null : TryAllocate(size);
        }
        public void Free(void* p) { Interlocked.Decrement(ref _live); NativeMemory.Free(p); }
        public int NodeOf(void* p) => 0;
        public IDrillMovable? TryAllocateMovable(int size) => new NativeMovable(size);
        public void RunOn(int node) { }
        public void FlushThread() { }
    }

    private sealed class ScriptedTarget(NativeHeap heap) : IDrillTarget
    {
        public List<string> Executed { get; } = [];
        public string Description => "stand-in heap";
        public IDrillHeap? Heap => heap;
        public long? AllocationCount => null;

        public DrillOutcome Execute(DrillStep step, Action<long, long> progress)
        {
            Executed.Add(step.Text);
            progress(10, 20);
            progress(20, 20);
            Thread.Sleep(20);
            return step.Zone == "normal" ? new DrillOutcome("busy", "5 unmovable pages in use", 0) : new DrillOutcome("ok", null, 20);
        }

        public DrillCounters ReadCounters() => new(Executed.Count, 0, 0, 0, 0);
        public IReadOnlyList<string> VerifyAndRelease() => [];
        public void Dispose() { }
    }

    private static DrillOptions Options => new() { Duration = TimeSpan.FromMilliseconds(600), Nodes = 4, Threads = 3, Seed = 5, SmallMax = 2048, LargeMax = 128 * 1024 };

    [Test]
    public void DefaultScenario_RunsEveryStep_FreesEverything_AndPasses()
    {
        var heap = new NativeHeap();
        var target = new ScriptedTarget(heap);
        var output = new StringWriter();
        var runner = new DrillRunner(Options, DrillScenario.Default(4), target, new DrillProgress(output, interactive: false, TimeSpan.Zero));

        DrillReport report = runner.Run();

        Assert.Multiple(() =>
        {
            Assert.That(target.Executed, Has.Count.EqualTo(5), "five hotplug steps");
            Assert.That(report.Steps, Has.Count.EqualTo(7));
            Assert.That(report.Steps[4].Result, Is.EqualTo("busy"));
            Assert.That(report.Steps[4].AsExpected, Is.True);
            Assert.That(report.Steps[1].DrainsRemote, Is.EqualTo(1), "counter differences per step");
            Assert.That(report.Steps[0].OpsPerSecond, Is.GreaterThan(0));
            Assert.That(report.Steps[0].P50Ns, Is.GreaterThan(0));
            Assert.That(report.ChecksumMismatches, Is.Empty);
            Assert.That(report.Passed, Is.True, string.Join("; ", report.UnexpectedResults.Select(s => s.Step)));
            Assert.That(heap.Live, Is.Zero, "every object freed by the end");
            Assert.That(output.ToString(), Does.Contain("step 5: offline zone 1 normal expect=busy -> busy (5 unmovable pages in use)"));
        });
    }

    [Test]
    public void StrictAllocationsToANodeThatCannotServe_AreExpectedFailures()
    {
        var heap = new NativeHeap();
        var runner = new DrillRunner(Options, DrillScenario.Parse("steady 300ms"), new ScriptedTarget(heap), new DrillProgress(TextWriter.Null, false, TimeSpan.Zero));

        DrillReport report = runner.Run();

        Assert.That(report.Steps[0].ExpectedFailures, Is.GreaterThan(0), "1 in 8 small allocations is strict to a random node; node 3 refuses");
        Assert.That(report.Steps[0].SpuriousFailures, Is.Zero);
    }

    [Test]
    public void CorruptedBuffer_FailsTheDrillAndIsNamed()
    {
        var heap = new NativeHeap();
        var runner = new DrillRunner(Options, DrillScenario.Parse("steady 300ms\noffline zone 3 movable"), new ScriptedTarget(heap), new DrillProgress(TextWriter.Null, false, TimeSpan.Zero))
        {
            OnWorkloadStarted = workload => workload.CorruptOneObject(),
        };

        DrillReport report = runner.Run();

        Assert.That(report.ExitCode, Is.EqualTo(1));
        Assert.That(report.ChecksumMismatches, Has.Count.EqualTo(1));
        Assert.That(report.ChecksumMismatches[0], Does.Match(@"^(movable buffer|small allocation|large allocation) #\d+ \(\d+ B, allocated by worker \d\)"));
    }
}
