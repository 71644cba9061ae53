/* CPU time per 4 KiB O_DIRECT random read at QD32, libaio against io_uring,
 * each completion announced on an eventfd that an epoll loop waits on (how
 * tesserad's loop engine reaps libaio). No target, no network: the floor an
 * engine sets. Usage: aio-vs-io_uring aio|uring FILE SECONDS */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/aio_abi.h>
#include <liburing.h>
#define QD 32
#define BS 4096
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static double cpu(){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec+r.ru_utime.tv_usec/1e6+r.ru_stime.tv_sec+r.ru_stime.tv_usec/1e6;}
static unsigned long long rnd=88172645463325252ULL; static unsigned long long xr(){rnd^=rnd<<13;rnd^=rnd>>7;rnd^=rnd<<17;return rnd;}
int main(int argc,char**argv){
  const char*mode=argv[1]; double secs=atof(argv[3]);
  int fd=open(argv[2],O_RDONLY|O_DIRECT); off_t blocks=lseek(fd,0,SEEK_END)/BS;
  int efd=eventfd(0,EFD_NONBLOCK); int ep=epoll_create1(0); struct epoll_event ev={.events=EPOLLIN}; epoll_ctl(ep,EPOLL_CTL_ADD,efd,&ev);
  char*bufs; posix_memalign((void**)&bufs,4096,QD*BS);
  long done=0; double t0=now(),c0=cpu();
  if(!strcmp(mode,"aio")){
    aio_context_t ctx=0; syscall(SYS_io_setup,QD*2,&ctx);
    struct iocb cbs[QD]; struct iocb*ptrs[QD]; struct io_event evs[QD];
    for(int i=0;i<QD;i++){memset(&cbs[i],0,sizeof cbs[i]);cbs[i].aio_fildes=fd;cbs[i].aio_lio_opcode=IOCB_CMD_PREAD;cbs[i].aio_buf=(unsigned long)(bufs+i*BS);cbs[i].aio_nbytes=BS;cbs[i].aio_offset=(xr()%blocks)*BS;cbs[i].aio_flags=IOCB_FLAG_RESFD;cbs[i].aio_resfd=efd;cbs[i].aio_data=i;ptrs[i]=&cbs[i];}
    syscall(SYS_io_submit,ctx,QD,ptrs);
    while(now()-t0<secs){ struct epoll_event e; epoll_wait(ep,&e,1,-1); unsigned long long v; read(efd,&v,8);
      int n=syscall(SYS_io_getevents,ctx,0,QD,evs,NULL); int k=0;
      for(int i=0;i<n;i++){struct iocb*cb=(struct iocb*)evs[i].obj; cb->aio_offset=(xr()%blocks)*BS; ptrs[k++]=cb;}
      done+=n; if(k) syscall(SYS_io_submit,ctx,k,ptrs);}
  } else {
    struct io_uring ring; io_uring_queue_init(QD*2,&ring,0); io_uring_register_eventfd(&ring,efd);
    for(int i=0;i<QD;i++){struct io_uring_sqe*s=io_uring_get_sqe(&ring); io_uring_prep_read(s,fd,bufs+i*BS,BS,(xr()%blocks)*BS); io_uring_sqe_set_data64(s,i);}
    io_uring_submit(&ring);
    while(now()-t0<secs){ struct epoll_event e; epoll_wait(ep,&e,1,-1); unsigned long long v; read(efd,&v,8);
      struct io_uring_cqe*cqes[QD]; int n=io_uring_peek_batch_cqe(&ring,cqes,QD);
      for(int i=0;i<n;i++){int idx=io_uring_cqe_get_data64(cqes[i]); struct io_uring_sqe*s=io_uring_get_sqe(&ring); io_uring_prep_read(s,fd,bufs+idx*BS,BS,(xr()%blocks)*BS); io_uring_sqe_set_data64(s,idx);}
      io_uring_cq_advance(&ring,n); done+=n; if(n) io_uring_submit(&ring);}
  }
  double dt=now()-t0, dc=cpu()-c0; printf("%s %.0f IOPS, %.2f us CPU per read\n",mode,done/dt,dc*1e6/done); return 0;}
