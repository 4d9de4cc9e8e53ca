using System.Runtime.Versioning;
using Numalloc.Pages;
using Numalloc.Platform;

namespace Numalloc.Tests.Pages;

/// <summary>Blocks are bound to their node's physical node when onlined, preferred or strict by the bind option.</summary>
[Platform("Linux")]
[SupportedOSPlatform("linux")]
public sealed unsafe class BlockBindingTests
{
    [TestCase(BindPolicy.Preferred, 1)]
    [TestCase(BindPolicy.Strict, 2)]
    public void OnlinedBlocks_AreBoundToTheirPhysicalNode_WithTheConfiguredMode(BindPolicy policy, int expectedModeValue)
    {
        var platform = new LinuxPlatform();
        AllocatorOptions options = TestHeaps.Options(4, 8);
        options = new AllocatorOptions
        {
            BlockBytes = options.BlockBytes, NormalBytes = options.NormalBytes, NormalMaxBytes = options.NormalMaxBytes,
            MovableBytes = 0, MovableMaxBytes = 0, Bind = policy,
        };
        using PageHeap heap = TestHeaps.Heap(2, options, platform);
        Assert.That(heap.TryGrow(heap.ZoneOf(1, ZoneType.Normal), long.MaxValue / 2), Is.True, "a grown block is bound too");
        foreach (int block in new[] { 0, 2, 3 })
        {
            Assert.That(heap.Blocks.State(block), Is.EqualTo(BlockState.Online));
            Assert.That(platform.TryQueryBinding(heap.Layout.AddressOfBlock(block), out BindMode mode, out int node), Is.True);
            Assert.That(mode, Is.EqualTo((BindMode)expectedModeValue));
            Assert.That(node, Is.EqualTo(heap.Topology.Nodes[heap.Layout.NodeOfBlock(block)].PhysicalNode));
        }
    }
}
