//! Every other function of the driver API that `cust_raw` 0.11.3 declares, each answering
//! `CUDA_ERROR_NOT_SUPPORTED` (801): a binary that links one of them still loads, and a call to
//! one says plainly that the emulated device does not do it. The list is the bindings' function
//! names (`cust_raw-0.11.3/src/cuda.rs`) less those implemented in this crate.
//!
//! Each takes no parameters here: under the C calling convention a caller's arguments are left
//! unread, and the result is the only thing the caller sees.

macro_rules! not_supported {
    ($($name:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            pub extern "C" fn $name() -> u32 {
                crate::code::NOT_SUPPORTED
            }
        )*
    };
}

not_supported! {
    cuArray3DCreate_v2, cuArray3DGetDescriptor_v2, cuArrayCreate_v2, cuArrayDestroy,
    cuArrayGetDescriptor_v2, cuArrayGetPlane, cuArrayGetSparseProperties, cuCtxAttach, cuCtxCreate_v3,
    cuCtxDetach, cuCtxDisablePeerAccess, cuCtxEnablePeerAccess, cuCtxGetApiVersion,
    cuCtxGetCacheConfig, cuCtxGetExecAffinity, cuCtxGetFlags, cuCtxGetLimit, cuCtxGetSharedMemConfig,
    cuCtxGetStreamPriorityRange, cuCtxResetPersistingL2Cache, cuCtxSetCacheConfig, cuCtxSetLimit,
    cuCtxSetSharedMemConfig, cuDestroyExternalMemory, cuDestroyExternalSemaphore,
    cuDeviceCanAccessPeer, cuDeviceComputeCapability, cuDeviceGetByPCIBusId, cuDeviceGetDefaultMemPool,
    cuDeviceGetExecAffinitySupport, cuDeviceGetGraphMemAttribute, cuDeviceGetLuid, cuDeviceGetMemPool,
    cuDeviceGetNvSciSyncAttributes, cuDeviceGetP2PAttribute, cuDeviceGetPCIBusId,
    cuDeviceGetProperties, cuDeviceGetTexture1DLinearMaxWidth, cuDeviceGetUuid, cuDeviceGetUuid_v2,
    cuDeviceGraphMemTrim, cuDevicePrimaryCtxGetState, cuDevicePrimaryCtxReset_v2,
    cuDevicePrimaryCtxSetFlags_v2, cuDeviceSetGraphMemAttribute, cuDeviceSetMemPool,
    cuEventRecordWithFlags, cuExternalMemoryGetMappedBuffer, cuExternalMemoryGetMappedMipmappedArray,
    cuFlushGPUDirectRDMAWrites, cuFuncGetModule, cuFuncSetAttribute, cuFuncSetBlockShape,
    cuFuncSetCacheConfig, cuFuncSetSharedMemConfig, cuFuncSetSharedSize, cuGetExportTable,
    cuGetProcAddress, cuGraphAddChildGraphNode, cuGraphAddDependencies, cuGraphAddEmptyNode,
    cuGraphAddEventRecordNode, cuGraphAddEventWaitNode, cuGraphAddExternalSemaphoresSignalNode,
    cuGraphAddExternalSemaphoresWaitNode, cuGraphAddHostNode, cuGraphAddKernelNode,
    cuGraphAddMemAllocNode, cuGraphAddMemFreeNode, cuGraphAddMemcpyNode, cuGraphAddMemsetNode,
    cuGraphChildGraphNodeGetGraph, cuGraphClone, cuGraphCreate, cuGraphDebugDotPrint, cuGraphDestroy,
    cuGraphDestroyNode, cuGraphEventRecordNodeGetEvent, cuGraphEventRecordNodeSetEvent,
    cuGraphEventWaitNodeGetEvent, cuGraphEventWaitNodeSetEvent, cuGraphExecChildGraphNodeSetParams,
    cuGraphExecDestroy, cuGraphExecEventRecordNodeSetEvent, cuGraphExecEventWaitNodeSetEvent,
    cuGraphExecExternalSemaphoresSignalNodeSetParams, cuGraphExecExternalSemaphoresWaitNodeSetParams,
    cuGraphExecHostNodeSetParams, cuGraphExecKernelNodeSetParams, cuGraphExecMemcpyNodeSetParams,
    cuGraphExecMemsetNodeSetParams, cuGraphExecUpdate, cuGraphExternalSemaphoresSignalNodeGetParams,
    cuGraphExternalSemaphoresSignalNodeSetParams, cuGraphExternalSemaphoresWaitNodeGetParams,
    cuGraphExternalSemaphoresWaitNodeSetParams, cuGraphGetEdges, cuGraphGetNodes, cuGraphGetRootNodes,
    cuGraphHostNodeGetParams, cuGraphHostNodeSetParams, cuGraphInstantiateWithFlags,
    cuGraphInstantiate_v2, cuGraphKernelNodeCopyAttributes, cuGraphKernelNodeGetAttribute,
    cuGraphKernelNodeGetParams, cuGraphKernelNodeSetAttribute, cuGraphKernelNodeSetParams,
    cuGraphLaunch, cuGraphMemAllocNodeGetParams, cuGraphMemFreeNodeGetParams,
    cuGraphMemcpyNodeGetParams, cuGraphMemcpyNodeSetParams, cuGraphMemsetNodeGetParams,
    cuGraphMemsetNodeSetParams, cuGraphNodeFindInClone, cuGraphNodeGetDependencies,
    cuGraphNodeGetDependentNodes, cuGraphNodeGetType, cuGraphReleaseUserObject,
    cuGraphRemoveDependencies, cuGraphRetainUserObject, cuGraphUpload, cuGraphicsMapResources,
    cuGraphicsResourceGetMappedMipmappedArray, cuGraphicsResourceGetMappedPointer_v2,
    cuGraphicsResourceSetMapFlags_v2, cuGraphicsSubResourceGetMappedArray, cuGraphicsUnmapResources,
    cuGraphicsUnregisterResource, cuImportExternalMemory, cuImportExternalSemaphore,
    cuIpcCloseMemHandle, cuIpcGetEventHandle, cuIpcGetMemHandle, cuIpcOpenEventHandle,
    cuIpcOpenMemHandle_v2, cuLaunch, cuLaunchCooperativeKernel, cuLaunchCooperativeKernelMultiDevice,
    cuLaunchGrid, cuLaunchGridAsync, cuLaunchHostFunc, cuLinkAddData_v2, cuLinkAddFile_v2,
    cuLinkComplete, cuLinkCreate_v2, cuLinkDestroy, cuMemAddressFree, cuMemAddressReserve, cuMemAdvise,
    cuMemAllocAsync, cuMemAllocFromPoolAsync, cuMemAllocHost_v2, cuMemAllocManaged, cuMemAllocPitch_v2,
    cuMemCreate, cuMemExportToShareableHandle, cuMemFreeAsync, cuMemFreeHost, cuMemGetAccess,
    cuMemGetAddressRange_v2, cuMemGetAllocationGranularity, cuMemGetAllocationPropertiesFromHandle,
    cuMemHostAlloc, cuMemHostGetDevicePointer_v2, cuMemHostGetFlags, cuMemHostRegister_v2,
    cuMemHostUnregister, cuMemImportFromShareableHandle, cuMemMap, cuMemMapArrayAsync, cuMemPoolCreate,
    cuMemPoolDestroy, cuMemPoolExportPointer, cuMemPoolExportToShareableHandle, cuMemPoolGetAccess,
    cuMemPoolGetAttribute, cuMemPoolImportFromShareableHandle, cuMemPoolImportPointer,
    cuMemPoolSetAccess, cuMemPoolSetAttribute, cuMemPoolTrimTo, cuMemPrefetchAsync,
    cuMemRangeGetAttribute, cuMemRangeGetAttributes, cuMemRelease, cuMemRetainAllocationHandle,
    cuMemSetAccess, cuMemUnmap, cuMemcpy, cuMemcpy2DAsync_v2, cuMemcpy2DUnaligned_v2, cuMemcpy2D_v2,
    cuMemcpy3DAsync_v2, cuMemcpy3DPeer, cuMemcpy3DPeerAsync, cuMemcpy3D_v2, cuMemcpyAsync,
    cuMemcpyAtoA_v2, cuMemcpyAtoD_v2, cuMemcpyAtoHAsync_v2, cuMemcpyAtoH_v2, cuMemcpyDtoA_v2,
    cuMemcpyHtoAAsync_v2, cuMemcpyHtoA_v2, cuMemcpyPeer, cuMemcpyPeerAsync, cuMemsetD16Async,
    cuMemsetD16_v2, cuMemsetD2D16Async, cuMemsetD2D16_v2, cuMemsetD2D32Async, cuMemsetD2D32_v2,
    cuMemsetD2D8Async, cuMemsetD2D8_v2, cuMemsetD8Async, cuMemsetD8_v2, cuMipmappedArrayCreate,
    cuMipmappedArrayDestroy, cuMipmappedArrayGetLevel, cuMipmappedArrayGetSparseProperties,
    cuModuleGetGlobal_v2, cuModuleGetSurfRef, cuModuleGetTexRef, cuModuleLoad, cuModuleLoadFatBinary,
    cuOccupancyAvailableDynamicSMemPerBlock, cuOccupancyMaxActiveBlocksPerMultiprocessor,
    cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags, cuOccupancyMaxPotentialBlockSize,
    cuOccupancyMaxPotentialBlockSizeWithFlags, cuParamSetSize, cuParamSetTexRef, cuParamSetf,
    cuParamSeti, cuParamSetv, cuPointerGetAttribute, cuPointerGetAttributes, cuPointerSetAttribute,
    cuProfilerInitialize, cuProfilerStart, cuProfilerStop, cuSignalExternalSemaphoresAsync,
    cuStreamAddCallback, cuStreamAttachMemAsync, cuStreamBatchMemOp, cuStreamBeginCapture_v2,
    cuStreamCopyAttributes, cuStreamEndCapture, cuStreamGetAttribute, cuStreamGetCaptureInfo,
    cuStreamGetCaptureInfo_v2, cuStreamGetCtx, cuStreamGetFlags, cuStreamGetPriority,
    cuStreamIsCapturing, cuStreamSetAttribute, cuStreamUpdateCaptureDependencies, cuStreamWaitEvent,
    cuStreamWaitValue32, cuStreamWaitValue64, cuStreamWriteValue32, cuStreamWriteValue64,
    cuSurfObjectCreate, cuSurfObjectDestroy, cuSurfObjectGetResourceDesc, cuSurfRefGetArray,
    cuSurfRefSetArray, cuTexObjectCreate, cuTexObjectDestroy, cuTexObjectGetResourceDesc,
    cuTexObjectGetResourceViewDesc, cuTexObjectGetTextureDesc, cuTexRefCreate, cuTexRefDestroy,
    cuTexRefGetAddressMode, cuTexRefGetAddress_v2, cuTexRefGetArray, cuTexRefGetBorderColor,
    cuTexRefGetFilterMode, cuTexRefGetFlags, cuTexRefGetFormat, cuTexRefGetMaxAnisotropy,
    cuTexRefGetMipmapFilterMode, cuTexRefGetMipmapLevelBias, cuTexRefGetMipmapLevelClamp,
    cuTexRefGetMipmappedArray, cuTexRefSetAddress2D_v3, cuTexRefSetAddressMode, cuTexRefSetAddress_v2,
    cuTexRefSetArray, cuTexRefSetBorderColor, cuTexRefSetFilterMode, cuTexRefSetFlags,
    cuTexRefSetFormat, cuTexRefSetMaxAnisotropy, cuTexRefSetMipmapFilterMode,
    cuTexRefSetMipmapLevelBias, cuTexRefSetMipmapLevelClamp, cuTexRefSetMipmappedArray,
    cuThreadExchangeStreamCaptureMode, cuUserObjectCreate, cuUserObjectRelease, cuUserObjectRetain,
    cuWaitExternalSemaphoresAsync
}
