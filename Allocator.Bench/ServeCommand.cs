using System.Globalization;

namespace Numalloc.Bench;

/// <summary>
/// <c>Allocator.Bench serve --socket PATH [--nodes N] [--threads N]</c>: a process with a simulated heap,
/// a steady allocation load and the control socket, until its standard input closes. The target
/// <c>ctl</c> and <c>drill --attach</c> are shown and tested against.
/// </summary>
internal static class ServeCommand
{
    public static unsafe int Run(IReadOnlyList<string> args, TextReader input, TextWriter output, TextWriter error)
    {
        string? socket = null;
        int nodes = 4, threads = 2;
        for (int i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new FormatException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--socket": socket = Value(); break;
                    case "--nodes": nodes = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--threads": threads = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    default: throw new FormatException($"unknown option '{args[i]}'");
                }
            }
            catch (FormatException e)
            {
                error.WriteLine("serve: " + e.Message);
                error.WriteLine("usage: Allocator.Bench serve --socket PATH [--nodes N] [--threads N]");
                return 64;
            }
        }
        if (socket is null || nodes < 2 || threads < 1)
        {
            error.WriteLine("usage: Allocator.Bench serve --socket PATH [--nodes N>=2] [--threads N>=1]");
            return 64;
        }

        using var allocator = NumaAllocator.Create(new AllocatorOptions
        {
            Topology = TopologySpec.Simulate(nodes, 2),
            NormalBytes = 32 * AllocatorOptions.MiB,
            MovableBytes = 32 * AllocatorOptions.MiB,
            BlockBytes = 16 * AllocatorOptions.MiB,
            AdminSocket = socket,
        });
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, threads).Select(w => new Thread(() => Churn(allocator, w, nodes, stop.Token)) { IsBackground = true }).ToList();
        workers.ForEach(t => t.Start());
        output.WriteLine($"serving {allocator.AdminSocketPath}");
        output.Flush();
        while (input.ReadLine() is not null)
        {
            // Any line is ignored: the server runs until standard input closes.
        }
        stop.Cancel();
        workers.ForEach(t => t.Join());
        return 0;
    }

    // A light steady load: small objects and movable buffers on the worker's node, freed in turn.
    private static unsafe void Churn(NumaAllocator allocator, int worker, int nodes, CancellationToken stop)
    {
        Platform.VirtualCpu.Set((worker % nodes) * 2);
        var objects = new Queue<nint>();
        var buffers = new Queue<Movable.MovableBuffer>();
        var random = new Random(worker);
        while (!stop.IsCancellationRequested)
        {
            objects.Enqueue((nint)allocator.Allocate((nuint)random.Next(8, 2048)));
            if (objects.Count > 256)
                allocator.Free((void*)objects.Dequeue());
            if (random.Next(16) == 0 && allocator.TryAllocateMovable(16 * 1024) is { } buffer)
                buffers.Enqueue(buffer);
            if (buffers.Count > 32)
                buffers.Dequeue().Free();
            if (random.Next(1024) == 0)
                Thread.Sleep(1); // leave the CPU to the operator's commands now and then
        }
        while (objects.Count > 0)
            allocator.Free((void*)objects.Dequeue());
        while (buffers.Count > 0)
            buffers.Dequeue().Free();
        allocator.FlushCurrentThread();
    }
}
