global using NUnit.Framework;
global using System.Runtime.InteropServices;
global using System.Runtime.CompilerServices;
